"""The VAE objective is BCE summed over pixels + KL per example; gradients pass the sampling."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genlab.models.ae import Autoencoder
from genlab.models.vae import VAE
from genlab.nn.losses import gaussian_kl, reconstruction_loss
from genlab.nn.vae import VAENet


def test_kl_matches_closed_form_on_known_values():
    mu = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)], [0.0, 0.0]])
    # Per dimension: 0.5 * (sigma^2 + mu^2 - 1 - log sigma^2).
    row0 = 0.5 * (1 + 1 - 1 - 0) + 0.5 * (4 + 0 - 1 - math.log(4.0))
    row1 = 0.0 + 0.5 * (1 + 4 - 1 - 0)
    assert gaussian_kl(mu, logvar).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_bce_from_logits_equals_sigmoid_then_bce_summed_per_example():
    torch.manual_seed(0)
    logits, target = torch.randn(4, 10), torch.rand(4, 10)
    probs = torch.sigmoid(logits)
    by_hand = -(target * probs.log() + (1 - target) * (1 - probs).log()).sum() / 4
    assert reconstruction_loss(logits, target, "bce").item() == pytest.approx(
        by_hand.item(), rel=1e-5
    )
    assert reconstruction_loss(logits, target, "mse").item() == pytest.approx(
        ((probs - target) ** 2).sum().item() / 4, rel=1e-5
    )


def test_vae_module_loss_is_bce_sum_plus_kld(monkeypatch):
    torch.manual_seed(0)
    model = VAE(input_shape=(1, 4, 4), latent_dim=3, hidden_dims=[8])
    # Sample-free so the reference can see the same z: z = mu.
    monkeypatch.setattr(
        VAENet, "reparameterize", staticmethod(lambda mu, logvar, generator=None: mu)
    )
    x = torch.rand(5, 1, 4, 4)
    losses = model.compute_losses((x, torch.zeros(5)), "val")

    flat = x.flatten(1)
    mu, logvar = model.net.encode(flat)
    recon = torch.sigmoid(model.net.decoder(mu))
    bce = F.binary_cross_entropy(recon, flat, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    assert losses["recon"].item() == pytest.approx(bce.item() / 5, rel=1e-5)
    assert losses["kl"].item() == pytest.approx(kld.item() / 5, rel=1e-5)
    assert losses["loss"].item() == pytest.approx((bce + kld).item() / 5, rel=1e-5)


def test_gradients_flow_through_reparameterization():
    torch.manual_seed(0)
    mu = torch.randn(3, 2, requires_grad=True)
    logvar = torch.randn(3, 2, requires_grad=True)
    torch.manual_seed(1)
    z = VAENet.reparameterize(mu, logvar)
    z.sum().backward()
    torch.manual_seed(1)
    eps = torch.randn(3, 2)
    assert torch.allclose(mu.grad, torch.ones(3, 2))
    assert torch.allclose(logvar.grad, 0.5 * eps * torch.exp(0.5 * logvar.detach()))

    model = VAE(input_shape=(1, 8, 8), latent_dim=2)
    model.compute_losses((torch.rand(6, 1, 8, 8), None), "train")["loss"].backward()
    for layer in (model.net.to_mu, model.net.to_logvar, model.net.encoder[0]):
        assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_kl_warmup_ramps_the_training_weight_only():
    model = VAE(input_shape=(1, 8, 8), beta=2.0, kl_warmup_epochs=4)

    class Loop:
        total_batch_idx = 10

    class Trainer:
        fit_loop = Loop()
        num_training_batches = 10

    model._trainer = Trainer()
    assert model.kl_weight("train") == pytest.approx(2.0 * 1 / 4)
    assert model.kl_weight("val") == 2.0


def test_classic_shapes():
    ae = Autoencoder(input_shape=(1, 28, 28))
    linears = [m for m in ae.net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(784, 128), (128, 784)]
    vae = VAE(input_shape=(1, 28, 28), latent_dim=20)
    shapes = [
        (m.in_features, m.out_features) for m in vae.net.modules() if isinstance(m, torch.nn.Linear)
    ]
    assert shapes == [(784, 400), (400, 20), (400, 20), (20, 400), (400, 784)]
    assert vae.sample(7).shape == (7, 1, 28, 28)
    images = torch.rand(3, 1, 28, 28)
    assert ae.reconstruct(images).shape == images.shape
    assert vae.reconstruct(images).min() >= 0 and vae.reconstruct(images).max() <= 1
