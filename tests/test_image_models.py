"""The convolutional VAE, and image models exported for plain PyTorch and onnxruntime."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import quiet_trainer
from PIL import Image
from safetensors.torch import load_file
from torchvision.utils import save_image

from genlab.cli.export import main as export_main
from genlab.cli.generate import main as generate_main
from genlab.data.digits import DigitsDataModule
from genlab.models.abilities import DecodesLatents, ExportsGenerator, Reconstructs, SamplesImages
from genlab.models.conv_vae import ConvVAE
from genlab.models.vae import VAE
from genlab.nn.conv_vae import ConvVAENet
from genlab.run.loading import load_run

QUIET = ["logger=none", "callbacks.progress_bar=null", "callbacks.model_summary=null"]
# One epoch of two batches.
SHORT = ["trainer.max_epochs=1", "+trainer.limit_train_batches=2"]
# conv_vae on the 8x8 digits: two halvings, to 2x2.
SMALL_CONV_VAE = ["model=conv_vae", "model.hidden_dims=[8,16]", "model.latent_dim=4"]


def load_exported(folder: Path) -> tuple[torch.nn.Module, dict]:
    """What README's export section tells a user to do: rebuild the class, load the weights."""
    config = json.loads((folder / "config.json").read_text())
    module_name, class_name = config["class"].rsplit(".", 1)
    network = getattr(importlib.import_module(module_name), class_name)(**config["args"])
    network.load_state_dict(load_file(folder / "model.safetensors"))
    return network.eval(), config


def test_conv_vae_is_pytorch_vaes_vanilla_vae_at_64x64():
    torch.manual_seed(0)
    net = ConvVAENet((3, 64, 64)).eval()
    widths = [m.out_channels for m in net.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert widths == [32, 64, 128, 256, 512]
    assert net.to_mu.in_features == 512 * 2 * 2 and net.to_mu.out_features == 128
    images = torch.rand(2, 3, 64, 64)
    logits, mu, logvar = net(images)
    assert logits.shape == images.shape and mu.shape == logvar.shape == (2, 128)
    decoded = net.decode(torch.randn(2, 128))
    assert decoded.shape == (2, 3, 64, 64) and decoded.min() >= 0 and decoded.max() <= 1

    model = ConvVAE((1, 28, 28), latent_dim=6, hidden_dims=(8, 16))
    assert isinstance(model, Reconstructs | SamplesImages | DecodesLatents | ExportsGenerator)
    assert model.encode(torch.rand(5, 1, 28, 28)).shape == (5, 6)
    assert model.reconstruct(torch.rand(5, 1, 28, 28)).shape == (5, 1, 28, 28)
    assert model.sample(3).shape == (3, 1, 28, 28)
    # The MLP VAE keeps its network and has no standalone decoder class to export.
    assert not isinstance(VAE((1, 8, 8)), ExportsGenerator)


def test_conv_vae_refuses_image_sides_it_cannot_halve(train_cli, tmp_path):
    with pytest.raises(ValueError, match="side must be a multiple of 32, got 28"):
        ConvVAENet((1, 28, 28))
    with pytest.raises(ValueError, match="needs square images"):
        ConvVAENet((3, 32, 16), hidden_dims=(8,))
    # From the command line: one error line naming the data setting, before anything is built.
    result = train_cli("model=conv_vae", *QUIET, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("genlab: error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(errors) == 1 and errors[0].startswith("genlab: error: data.dims=[1, 8, 8]: ")
    assert "multiple of 32, got 8; use fewer model.hidden_dims" in errors[0]
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.parametrize("loss", ["bce", "mse"])
def test_conv_vae_trains_under_bf16_mixed(loss):
    torch.manual_seed(0)
    model = ConvVAE((1, 8, 8), latent_dim=4, hidden_dims=(8, 16), loss=loss)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = quiet_trainer(precision="bf16-mixed", limit_train_batches=2)
    trainer.fit(model, datamodule=DigitsDataModule(batch_size=16))
    assert trainer.global_step == 2
    loss_value = trainer.callback_metrics["train/loss"]
    recon = trainer.callback_metrics["train/recon"]
    assert torch.isfinite(loss_value) and recon > 0
    # BCE of [0, 1] pixels through a Sigmoid is about 0.69 nats per pixel at the start, MSE
    # below 0.25 per pixel: the configured loss is the one computed.
    assert (recon > 64 * 0.4) if loss == "bce" else (recon < 64 * 0.25)
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_exported_dcgan_generator_gives_genlab_generates_images(train_cli, tmp_path):
    """A DCGAN run with a weight average: the export is that average, and plain PyTorch and
    onnxruntime turn genlab-generate's noise into its images."""
    run_dir = tmp_path / "run"
    result = train_cli(
        "model=dcgan",
        "model.generator_width=8",
        "model.discriminator_width=8",
        "model.ema_decay=0.9",
        "model.eval.features=none",
        *SHORT,
        *QUIET,
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "export"
    export_main([f"run_dir={run_dir}", f"out={out}", "format=onnx"])
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "model.onnx",
        "model.safetensors",
    ]
    network, config = load_exported(out)
    assert config["class"] == "genlab.nn.dcgan.DCGANGenerator"
    assert config["args"] == {"latent_dim": 100, "output_shape": [1, 8, 8], "width": 8}
    assert (config["latent_dim"], config["output_shape"]) == (100, [1, 8, 8])
    assert config["value_range"] == [-1.0, 1.0]
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    ema = {k.removeprefix("generator_ema."): v for k, v in state.items() if "generator_ema." in k}
    assert all(torch.equal(ema[k], v) for k, v in network.state_dict().items())

    # genlab-generate's grid of seed 3 is the exported network's images of the same noise.
    generate_main([f"run_dir={run_dir}", "n=16", "nrow=4", "seed=3", f"out={tmp_path / 'a.png'}"])
    z = torch.randn(16, config["latent_dim"], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        images = network(z)
    assert images.shape == (16, 1, 8, 8) and images.std() > 0.01
    low, high = config["value_range"]
    save_image(((images - low) / (high - low)).clamp(0, 1), tmp_path / "b.png", nrow=4, pad_value=1)
    generated, exported = (np.asarray(Image.open(tmp_path / f"{n}.png")) for n in "ab")
    assert np.array_equal(generated, exported)

    import onnxruntime

    session = onnxruntime.InferenceSession(str(out / "model.onnx"))
    (onnx_images,) = session.run(None, {"z": z.numpy()})
    np.testing.assert_allclose(onnx_images, images.numpy(), atol=1e-5)


def test_exported_conv_vae_decoder_and_runs_that_cannot_export(train_cli, tmp_path, capfd):
    run_dir = tmp_path / "vae"
    result = train_cli(*SMALL_CONV_VAE, *SHORT, *QUIET, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    export_main([f"run_dir={run_dir}", f"out={tmp_path / 'export'}"])
    network, config = load_exported(tmp_path / "export")
    assert config["class"] == "genlab.nn.conv_vae.ConvDecoder"
    assert config["args"] == {"latent_dim": 4, "output_shape": [1, 8, 8], "hidden_dims": [8, 16]}
    assert config["value_range"] == [0.0, 1.0]
    assert not (tmp_path / "export" / "model.onnx").exists()
    model, _, _ = load_run(run_dir)
    z = torch.randn(4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(network(z), model.sample(4, torch.Generator().manual_seed(0)))

    # One error line each: a format it does not write (before loading), a run it cannot export.
    mlp_dir = tmp_path / "mlp"
    mlp = train_cli("model=vae", *SHORT, *QUIET, f"hydra.run.dir={mlp_dir}", cwd=tmp_path)
    assert mlp.returncode == 0, mlp.stderr[-3000:]
    for run, args, message in (
        (run_dir, ["format=tar"], "format=tar: must be safetensors or onnx"),
        (mlp_dir, [], "is a VAE run: genlab-export takes GAN, DCGAN, conv_vae and GPT-2 runs"),
    ):
        capfd.readouterr()
        with pytest.raises(SystemExit) as exit:
            export_main([f"run_dir={run}", f"out={tmp_path / 'refused'}", *args])
        err = capfd.readouterr().err.splitlines()
        assert exit.value.code == 2 and len(err) == 1 and message in err[0], err
        assert not (tmp_path / "refused").exists()
