"""Plumbing shared by every genlab LightningModule: configured optimizers and per-stage logging."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.plugins.precision import MixedPrecision, Precision
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import GradClipAlgorithmType

from genlab.errors import DIVERGENCE_HINT, TrainingDiverged
from genlab.models.divergence import DeferredFiniteCheck

OptimizerFactory = Callable[..., torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


def rng_states() -> dict[str, Any]:
    """Python, NumPy, torch and CUDA RNG states, in types `torch.load(weights_only=True)` takes."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    states = {
        "python": random.getstate(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def pixel_range_problems(
    config: dict[str, Any], model_range: tuple[float, float], why: str
) -> list[str]:
    """The error line when `model.value_range` is not the one range a network works in."""
    value_range = (config.get("model") or {}).get("value_range")
    if value_range is None or [float(v) for v in value_range] == list(model_range):
        return []
    return [
        f"model.value_range={list(value_range)}: {why}, so its pixels are in "
        f"{[int(v) for v in model_range]}; leave model.value_range at that"
    ]


class GenlabModule(L.LightningModule):
    """Subclasses implement `compute_losses`; this logs `{stage}/{name}` and minimizes "loss".

    Epoch metrics are exact per-example means over the whole split (and over all ranks): losses
    are summed here, weighted by batch size, and logged once per epoch. Calling `self.log` for
    every metric on every batch costs about a millisecond each in Lightning, a large share of a
    small model's step; training values per step go to the loggers every `log_every_n_steps`
    as `train/{name}_step`.

    `optimizer` and `scheduler` are partials from the config (`_partial_: true`), called here
    with the parameters and the optimizer, so no optimizer is hard-coded in a model.

    Reproducibility: validation and test draw their noise from `noise_generator`, reset to the
    same seed every epoch, so `val/loss` compares across epochs and test metrics are the same
    whenever a checkpoint is evaluated. Checkpoints carry the global RNG states, restored when
    training resumes, so a resumed run continues exactly as an uninterrupted one.
    """

    eval_noise_seed = 0
    # The metric a run's last line shows (test/<it>, else val/<it>).
    headline_metric = "loss"
    # What batches the model trains on: "images", "token blocks" or "sentence pairs" (a config
    # whose datamodule gives another kind is refused before anything is built).
    data_kind = "images"
    # What ModelCheckpoint(monitor="auto") keeps as best (None: the latest), and in which mode.
    checkpoint_monitor: str | None = "val/loss"
    checkpoint_mode = "min"
    # Training metrics shown in the progress bar.
    progress_bar_metrics: tuple[str, ...] = ("loss",)
    # What to try when a loss becomes NaN or infinite.
    divergence_hint = DIVERGENCE_HINT
    # True when a training step leaves some parameters without gradients (a GAN's two players):
    # DDP must then look for unused parameters (genlab-train picks that strategy for `ddp`).
    ddp_find_unused_parameters = False
    # How often, in optimizer steps, the divergence check reads the device: 1, every loss at
    # once; N > 1, a flag kept on the device, every update from the first non-finite loss on
    # skipped by the (fused) optimizers, and the run stopped at the next read with the weights
    # of the last good step (genlab.models.divergence). genlab-train sets it from
    # `divergence_check_every`.
    divergence_check_every = 1
    # How many optimizers `configure_optimizers` returns. Lightning's learning-rate finder
    # (tune=lr_find) tunes a model with one; the config checks refuse it for others.
    num_optimizers = 1

    def __init__(
        self,
        optimizer: OptimizerFactory | None = None,
        scheduler: SchedulerFactory | None = None,
        scheduler_monitor: str = "val/loss",
    ):
        super().__init__()
        self.optimizer_factory = optimizer or partial(torch.optim.Adam, lr=1e-3)
        self.scheduler_factory = scheduler
        self.scheduler_monitor = scheduler_monitor
        # stage -> metric -> (weighted sum, total weight) over the epoch's batches so far.
        self._epoch_sums: dict[str, dict[str, tuple[torch.Tensor, Any]]] = {}
        self._eval_generator: torch.Generator | None = None
        self._deferred_check = DeferredFiniteCheck()

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        """What is wrong with a resolved config for this model that no single key shows, one line
        each, checked before anything is built (`genlab.config.checks`). None by default."""
        return []

    def compile_networks(self, mode: str | None = None, same_random_numbers: bool = False) -> None:
        """torch.compile each network of the model in place (`nn.Module.compile`), in `mode`
        (None: the default; "reduce-overhead" adds CUDA graphs on a GPU): its parameters and
        state-dict keys stay as they are, so checkpoints, resumes and exports do not know it
        was compiled. The first steps pay for the compilation.

        Compiled code draws its random numbers (dropout, a VAE's noise) from a generator of its
        own; `same_random_numbers` has it draw eager PyTorch's instead (slower), so that a
        compiled run repeats an eager one with the same seed."""
        import torch._inductor.config

        torch._inductor.config.fallback_random = same_random_numbers
        for network in self.children():
            network.compile(mode=mode)

    def compute_losses(self, batch, stage: str) -> dict[str, torch.Tensor]:
        """Scalar losses for one batch; must contain "loss", the value that is minimized."""
        raise NotImplementedError

    def _step(self, batch, stage: str) -> torch.Tensor:
        losses = self.compute_losses(batch, stage)
        if stage == "train":
            self.ensure_finite(losses)
        self.track(stage, losses, batch[0].size(0), self.metric_weights(batch))
        return losses["loss"]

    def metric_weights(self, batch) -> dict[str, torch.Tensor]:
        """Weights of this batch's metrics that are not means over its examples (a language
        model's token mean weighs by its number of tokens); the rest weigh by batch size."""
        return {}

    def ensure_finite(self, losses: dict[str, torch.Tensor]) -> None:
        """Raise TrainingDiverged if a training loss is NaN or infinite, before the optimizer
        steps on it, so the weights (and every checkpoint) stay those of the last good step.

        One device sync per call: a diverged run is stopped at the step where it diverged
        (with `divergence_check_every` > 1, at the next read; see `DeferredFiniteCheck`).
        """
        if self.divergence_check_every > 1:
            self._deferred_check.note(losses, self.trainer.global_step)
            return
        values = torch.stack([value.detach().float().sum() for value in losses.values()])
        if bool(torch.isfinite(values).all()):
            return
        name, value = next((n, v) for n, v in losses.items() if not torch.isfinite(v).all())
        raise TrainingDiverged(
            f"train/{name}",
            float(value.detach().float().sum()),
            self.trainer.global_step,
            self.trainer.current_epoch,
            self.divergence_hint,
        )

    def track(
        self,
        stage: str,
        values: dict[str, torch.Tensor],
        batch_size: int,
        weights: dict[str, torch.Tensor] | None = None,
    ) -> None:
        """Add one batch's metrics to the epoch means (weighted by batch size, or by `weights`
        for the metrics named there); in training, log them every n batches."""
        sums = self._epoch_sums.setdefault(stage, {})
        for name, value in values.items():
            weight = batch_size if weights is None or name not in weights else weights[name]
            total, count = sums.get(name, (0.0, 0))
            sums[name] = (total + value.detach().float() * weight, count + weight)
        if stage != "train":
            return
        # Counted in batches, not optimizer steps: a GAN steps two optimizers per batch.
        if (self.trainer.fit_loop.total_batch_idx + 1) % self.trainer.log_every_n_steps == 0:
            step_values = {f"train/{name}_step": value.detach() for name, value in values.items()}
            self.log_dict(step_values, on_step=True, on_epoch=False)
            progress = {
                name: step_values[f"train/{name}_step"] for name in self.progress_bar_metrics
            }
            self.log_dict(progress, prog_bar=True, logger=False, on_step=True, on_epoch=False)

    def _log_epoch_means(self, stage: str) -> None:
        if stage not in self._epoch_sums:
            return
        sums = self._epoch_sums.pop(stage)
        # A total restored from a mid-epoch checkpoint is a float until a batch is added to it.
        totals = [
            torch.as_tensor(total, dtype=torch.float, device=self.device)
            for total, _ in sums.values()
        ]
        counts = [
            torch.as_tensor(count, dtype=torch.float, device=self.device)
            for _, count in sums.values()
        ]
        reduced = self.trainer.strategy.reduce(torch.stack([*totals, *counts]), reduce_op="sum")
        means = {name: reduced[i] / reduced[len(sums) + i] for i, name in enumerate(sums)}
        means.update(self.derived_metrics(means))
        means = {f"{stage}/{name}": value for name, value in means.items()}
        self.log_dict(means, on_step=False, on_epoch=True, prog_bar=stage == "val")

    def derived_metrics(self, means: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Metrics computed from an epoch's means (perplexity = exp of the mean token loss)."""
        return {}

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "test")

    def noise_generator(self, stage: str) -> torch.Generator | None:
        """The global RNG (None) in training; in val and test, a generator reset each epoch."""
        return None if stage == "train" else self._eval_generator

    def _reset_eval_noise(self) -> None:
        # One stream per rank under DDP (rank 0's is the single-device one): ranks score
        # different samples, not copies.
        seed = self.eval_noise_seed + self.global_rank
        self._eval_generator = torch.Generator(self.device).manual_seed(seed)

    def on_validation_epoch_start(self) -> None:
        self._reset_eval_noise()

    def on_test_epoch_start(self) -> None:
        self._reset_eval_noise()

    def on_before_optimizer_step(self, optimizer) -> None:
        found_inf = self._deferred_check.found_inf()
        if found_inf is not None:  # a fused optimizer skips the update on the device
            optimizer.found_inf = found_inf.to(self.device)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.divergence_check_every > 1 and (
            self.trainer.global_step % self.divergence_check_every == 0
            or self.trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        ):
            self.stop_if_diverged()

    def stop_if_diverged(self) -> None:
        """The deferred divergence check's host read: raise TrainingDiverged if a training loss
        was non-finite since the run started (the updates since were skipped)."""
        found = self._deferred_check.read()
        if found is None:
            return
        name, step = found
        raise TrainingDiverged(
            f"train/{name}",
            "non-finite",
            step,
            self.trainer.current_epoch,
            self.divergence_hint,
        )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.divergence_check_every > 1:
            self.stop_if_diverged()  # no checkpoint of a run that has diverged
        checkpoint["rng_states"] = rng_states()
        # Saved before the epoch's end (a validation every N steps, a stop, even one during the
        # epoch's last validation): the sums so far, so that a resumed run's epoch means are
        # the uninterrupted run's.
        sums = self._epoch_sums.get("train")
        last_batch = self.trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        if sums and (not last_batch or self.trainer.received_sigterm):
            checkpoint["train_epoch_sums"] = {
                name: (float(total), float(count)) for name, (total, count) in sums.items()
            }
        # Which model wrote it, so a checkpoint given to another model is refused up front.
        checkpoint["genlab_model"] = f"{type(self).__module__}.{type(self).__qualname__}"

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Only when resuming a fit: loading weights elsewhere must not reset the caller's RNG.
        # Lightning runs the sanity check under `isolate_rng`, so nothing consumes these states
        # before the training dataloader draws its shuffle.
        fitting = self._trainer is not None and self.trainer.state.fn == TrainerFn.FITTING
        if fitting and "rng_states" in checkpoint:
            set_rng_states(checkpoint["rng_states"])
        if fitting and "train_epoch_sums" in checkpoint:
            self._epoch_sums["train"] = dict(checkpoint["train_epoch_sums"])

    def on_train_epoch_end(self) -> None:
        self._log_epoch_means("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_means("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_means("test")

    def clip_gradients(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        """Lightning's, except that bf16-mixed clips the gradients of fused optimizers too.

        Lightning 2.6 refuses clipping with a fused optimizer under any mixed precision
        (Lightning-AI/pytorch-lightning#21435, fixed upstream in #21436): only a gradient
        scaler (16-mixed), whose unscaling a fused step does itself, makes clipping wrong, and
        bf16-mixed has none. There the gradients are clipped as at full precision."""
        plugin = self.trainer.precision_plugin
        if not (isinstance(plugin, MixedPrecision) and plugin.scaler is None):
            super().clip_gradients(optimizer, gradient_clip_val, gradient_clip_algorithm)
            return
        value = self.trainer.gradient_clip_val if gradient_clip_val is None else gradient_clip_val
        algorithm = gradient_clip_algorithm or self.trainer.gradient_clip_algorithm or "norm"
        algorithm = GradClipAlgorithmType(algorithm.lower())
        Precision.clip_gradients(plugin, optimizer, value or 0.0, algorithm)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": self.scheduler_monitor},
        }
