"""Image grids each validation epoch, to every logger: reconstructions, samples, latent map."""

from __future__ import annotations

import lightning as L
import torch

from genlab.loggers.registry import logging_step, media_adapters
from genlab.models.abilities import DecodesLatents, ImageModel, Reconstructs, SamplesImages
from genlab.utils.pixels import to_unit_range


def _enlarge(images: torch.Tensor, min_size: int = 32) -> torch.Tensor:
    """Nearest-neighbour upscale of tiny images (8x8 digits) so the loggers show them legibly."""
    factor = -(-min_size // images.shape[-1])
    if factor <= 1:
        return images
    return images.repeat_interleave(factor, -1).repeat_interleave(factor, -2)


class ImageGrids(L.Callback):
    """Logs what an image model can show (its abilities, `genlab.models.abilities`):

    - `Reconstructs`: a fixed batch of validation inputs (top rows) over reconstructions;
    - `SamplesImages`: samples from one fixed noise seed, comparable across epochs;
    - `DecodesLatents` with `latent_dim == 2`: the decoded grid of latent space over Gaussian
      quantiles.
    """

    def __init__(
        self, num_images: int = 16, num_samples: int = 64, manifold_steps: int = 20, seed: int = 0
    ):
        self.num_images = num_images
        self.num_samples = num_samples
        self.manifold_steps = manifold_steps
        self.seed = seed
        self._inputs: torch.Tensor | None = None

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        adapters = media_adapters(trainer)
        if not adapters or not isinstance(pl_module, ImageModel):
            return
        from torchvision.utils import make_grid

        step = logging_step(trainer)
        # Inside the trainer's precision context, as validation_step is (outside it, float32
        # inputs would meet bfloat16 weights under trainer.precision=bf16-true).
        with torch.no_grad(), trainer.precision_plugin.forward_context():
            for tag, images, nrow in self._grids(trainer, pl_module):
                images = to_unit_range(images.cpu(), pl_module.value_range).clamp(0, 1)
                images = _enlarge(images)
                grid = make_grid(images, nrow=nrow, pad_value=1.0)
                pixels = grid.mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
                for adapter in adapters:
                    adapter.log_image(f"images/{tag}", pixels, step)

    def _grids(self, trainer: L.Trainer, pl_module: L.LightningModule):
        if isinstance(pl_module, Reconstructs):
            inputs = trainer.precision_plugin.convert_input(self._fixed_inputs(trainer))
            inputs = inputs.to(pl_module.device)
            yield "reconstructions", torch.cat([inputs, pl_module.reconstruct(inputs)]), len(inputs)
        if isinstance(pl_module, SamplesImages):
            generator = torch.Generator().manual_seed(self.seed)
            yield "samples", pl_module.sample(self.num_samples, generator=generator), 8
        if isinstance(pl_module, DecodesLatents) and pl_module.latent_dim == 2:
            yield "latent_manifold", self._manifold(pl_module), self.manifold_steps

    def _fixed_inputs(self, trainer: L.Trainer) -> torch.Tensor:
        if self._inputs is None:
            batch = next(iter(trainer.val_dataloaders))
            self._inputs = batch[0][: self.num_images].clone()
        return self._inputs

    def _manifold(self, pl_module: L.LightningModule) -> torch.Tensor:
        """Decode a grid of z over the 5%..95% quantiles of N(0, 1) per axis."""
        quantiles = torch.linspace(0.05, 0.95, self.manifold_steps, dtype=torch.float32)
        values = torch.special.ndtri(quantiles)  # float32: no bfloat16 kernel
        z1, z2 = torch.meshgrid(values.flip(0), values, indexing="ij")
        z = torch.stack([z2.reshape(-1), z1.reshape(-1)], dim=1)
        z = z.to(pl_module.device, torch.get_default_dtype())  # the precision context's
        return pl_module.decode(z)
