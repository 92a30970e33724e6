"""The divergence check without a device sync per step.

Reading a loss's value on the host waits for the GPU to finish the step: for a small model that
wait is most of the step. Instead, each training loss is checked on the device and the result
kept there; from the first non-finite loss on, every update is skipped on the device (fused
optimizers take a `found_inf` flag, as under the gradient scaler: no parameter, moment or step
count changes); and the host reads the flags every `every` steps, then stops the run. The
weights it stops with are those of the last good step.
"""

from __future__ import annotations

import torch


class DeferredFiniteCheck:
    def __init__(self) -> None:
        self.bad: torch.Tensor | None = None  # any non-finite loss so far
        self.first_step: torch.Tensor | None = None  # the step of the first, -1 if none
        self.names: dict[str, torch.Tensor] = {}  # loss name -> whether it was ever non-finite

    def note(self, losses: dict[str, torch.Tensor], step: int) -> None:
        """Record, on the device, whether any of this step's losses is NaN or infinite."""
        for name, value in losses.items():
            bad = ~torch.isfinite(value.detach()).all()
            self.names[name] = self.names[name] | bad if name in self.names else bad
            if self.bad is None:
                self.bad = torch.zeros_like(bad)
                self.first_step = torch.full((), -1, dtype=torch.long, device=bad.device)
            self.first_step = torch.where(bad & ~self.bad, step, self.first_step)
            self.bad = self.bad | bad

    def found_inf(self) -> torch.Tensor | None:
        """The flag a fused optimizer skips its update on (1.0: skip)."""
        return None if self.bad is None else self.bad.float()

    def read(self) -> tuple[str, int] | None:
        """One host read: (a loss that became non-finite, the step of the first non-finite
        loss), or None if all were finite."""
        if self.bad is None:
            return None
        names = list(self.names)
        flags = torch.stack([self.first_step, *(self.names[n].long() for n in names)]).tolist()
        if flags[0] < 0:
            return None
        return next(n for n, flag in zip(names, flags[1:], strict=True) if flag), flags[0]
