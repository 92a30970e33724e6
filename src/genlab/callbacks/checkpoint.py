"""ModelCheckpoint that asks the model what "best" means; checkpoint files written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from genlab.models.base import GenlabModule
from genlab.utils.atomic import replace_atomically


class BestCheckpoint(ModelCheckpoint):
    """With `monitor="auto"`, monitors the model's `checkpoint_monitor` in its `checkpoint_mode`.

    AE and VAE keep the lowest `val/loss`; a GAN has no validation loss that tracks sample
    quality, so it says None and `best.ckpt` is the latest epoch, as for a model that is not a
    genlab model (it says nothing).
    """

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.monitor == "auto":
            genlab_model = isinstance(pl_module, GenlabModule)
            self.monitor = pl_module.checkpoint_monitor if genlab_model else None
            self.mode = pl_module.checkpoint_mode if genlab_model else "min"
            self.kth_value = torch.tensor(torch.inf if self.mode == "min" else -torch.inf)
        super().setup(trainer, pl_module, stage)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # A smoke test (fast_dev_run) saves no checkpoint; Lightning 2.6 saves last.ckpt here
        # regardless.
        if not trainer.fast_dev_run:
            super().on_train_end(trainer, pl_module)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """A run directory that was moved or copied resumes as if it had stayed. The paths in
        its checkpoint point into the old folder, where Lightning would go on looking: it
        tested the old folder's best.ckpt (or failed when it was gone) and wrote best-v1.ckpt
        beside the copies. When this folder holds the same best checkpoint, paths move here."""
        old, new = state_dict.get("dirpath"), self.dirpath
        best = state_dict.get("best_model_path") or ""
        if (
            old
            and new
            and old != new
            and best.startswith(old)
            and Path(new, Path(best).name).exists()
        ):
            state_dict = _moved(state_dict, old, new)
        super().load_state_dict(state_dict)


def _moved(state: Any, old: str, new: str) -> Any:
    """`state` with every path under `old` (strings and dict keys) rewritten under `new`."""
    if isinstance(state, str):
        return new + state[len(old) :] if state == old or state.startswith(old + "/") else state
    if isinstance(state, dict):
        return {_moved(k, old, new): _moved(v, old, new) for k, v in state.items()}
    return state


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes a checkpoint to a temporary file next to it, syncs it, then renames it into place.

    A process killed during a save (preemption, out of memory, Ctrl+C twice) leaves the previous
    `last.ckpt` whole. Lightning's own writer stages in the system temp folder, which is often
    another file system than the run directory (a node's /tmp vs shared storage): its final move
    is then a copy over the old file. Remote file systems (s3://, ...) keep Lightning's writer.
    """

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        path = Path(path)
        for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a process killed mid-save
            stale.unlink(missing_ok=True)

        def write(tmp: Path) -> None:
            with tmp.open("wb") as f:
                try:
                    torch.save(checkpoint, f)
                except RuntimeError as err:  # torch's writer reports a full disk as this
                    raise OSError(f"torch.save failed ({str(err).splitlines()[0]})") from err

        replace_atomically(path, write, durable=True)
