"""Speed switches. model.compile=true: torch.compile of the networks gives the eager losses, and a
compiled run's checkpoints resume and export as an eager run's do. tf32: TF32 on NVIDIA GPUs.
Fused optimizers clip their gradients under bf16-mixed."""

from __future__ import annotations

import json
from functools import partial

import pytest
import torch
from conftest import QUIET_AE, quiet_trainer

from genlab.cli.export import main as export_main
from genlab.config.rules import RULES
from genlab.data.digits import DigitsDataModule
from genlab.models.gpt2 import GPT2
from genlab.models.vae import VAE
from genlab.run.evaluate import evaluate_run
from genlab.text.chars import char_tokenizer


def _vae():
    return VAE(input_shape=(1, 8, 8), latent_dim=4, optimizer=partial(torch.optim.Adam, lr=1e-2))


def _gpt2():
    model = GPT2(tokenizer="char", n_layer=1, n_head=2, n_embd=16, n_positions=16, dropout=0.0)
    model.build_on(char_tokenizer(sorted(set("the king said: hello\n"))))
    model.optimizer_factory = partial(torch.optim.AdamW, lr=1e-2)
    return model


def _batch(kind: str):
    generator = torch.Generator().manual_seed(1)
    if kind == "vae":
        return torch.rand(16, 1, 8, 8, generator=generator), torch.zeros(16)
    ids = torch.randint(16, (4, 9), generator=generator)  # the 16 ids of _gpt2()
    return ids[:, :-1], ids[:, 1:]


@pytest.mark.parametrize(
    ("kind", "mode"), [("vae", None), ("gpt2", None), ("vae", "reduce-overhead")]
)
def test_compiled_networks_train_with_the_eager_losses(kind, mode):
    build = _vae if kind == "vae" else _gpt2
    losses = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        model = build()
        keys = list(model.state_dict())
        if compiled:
            torch._dynamo.reset()
            torch._dynamo.utils.counters.clear()
            model.compile_networks(mode, same_random_numbers=True)
        assert list(model.state_dict()) == keys  # no _orig_mod. anywhere
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        losses[compiled] = []
        for _ in range(3):  # the VAE's noise comes from the same seeded stream both times
            loss = model.compute_losses(_batch(kind), "train")["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses[compiled].append(loss.item())
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] > 0  # it did compile
    assert losses[True] == pytest.approx(losses[False], abs=1e-4)


def test_a_compiled_run_resumes_and_exports(train_cli, tmp_path):
    text = tmp_path / "play.txt"
    text.write_text("ROMEO: the king shall speak to Juliet of love\n" * 200, encoding="utf-8")
    run_dir = tmp_path / "run"
    common = [
        "experiment=gpt_shakespeare_char",
        f"data.path={text}",
        "model.n_layer=1",
        "model.n_head=2",
        "model.n_embd=16",
        "data.block_size=16",
        "model.n_positions=16",
        "model.compile=true",
        "trainer.val_check_interval=5",
        "trainer.limit_val_batches=2",
        "model.warmup_steps=2",
        "model.sample_max_new_tokens=10",
        "logger=none",
        f"paths.cache_dir={tmp_path / 'cache'}",
    ]
    first = train_cli(*common, "trainer.max_steps=5", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 5
    assert not any("_orig_mod" in key for key in checkpoint["state_dict"])

    again = train_cli(
        *common, "trainer.max_steps=10", f"run_dir={run_dir}", "ckpt_path=last", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 10
    assert json.loads((run_dir / "run.json").read_text())["config"]["model"]["compile"] is True

    export_main([f"run_dir={run_dir}", f"out={tmp_path / 'hf'}"])
    from transformers import GPT2LMHeadModel

    plain = GPT2LMHeadModel.from_pretrained(tmp_path / "hf")
    assert plain.config.n_embd == 16 and plain.config.vocab_size == len(set(text.read_text())) + 1


@pytest.mark.parametrize("tf32", [False, True])
def test_tf32_follows_the_config(train_cli, tmp_path, tf32):
    switches = torch.backends.cuda.matmul, torch.backends.cudnn
    before = [switch.allow_tf32 for switch in switches]
    for switch in switches:
        switch.allow_tf32 = not tf32
    try:
        result = train_cli(
            *QUIET_AE,
            f"tf32={str(tf32).lower()}",
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=2",
            "test=false",
            f"hydra.run.dir={tmp_path / 'run'}",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert [switch.allow_tf32 for switch in switches] == [tf32, tf32]
        # What Lightning reads (through the legacy switch, which this must keep working).
        assert torch.get_float32_matmul_precision() == ("high" if tf32 else "highest")
        # genlab-eval tests the run as it was trained.
        for switch in switches:
            switch.allow_tf32 = not tf32
        evaluate_run(str(tmp_path / "run"), None)
        assert [switch.allow_tf32 for switch in switches] == [tf32, tf32]
    finally:
        for switch, value in zip(switches, before, strict=True):
            switch.allow_tf32 = value


def test_bf16_mixed_clips_the_gradients_of_fused_optimizers():
    torch.manual_seed(0)
    # SGD at lr 1: the step is the clipped gradient itself.
    sgd = partial(torch.optim.SGD, lr=1.0, fused=True)
    model = VAE(input_shape=(1, 8, 8), latent_dim=4, optimizer=sgd)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = quiet_trainer(precision="bf16-mixed", gradient_clip_val=0.01)
    trainer.fit(model, DigitsDataModule(batch_size=16))
    assert trainer.global_step == 1
    moved = [(p.detach() - b).pow(2).sum() for p, b in zip(model.parameters(), before, strict=True)]
    assert torch.stack(moved).sum().sqrt().item() == pytest.approx(0.01, rel=1e-4)


def test_model_compile_takes_torch_compiles_modes():
    rule = RULES["compile"]
    assert all(rule.accepts(v) for v in (True, False, "reduce-overhead", "max-autotune"))
    assert not rule.accepts("fast") and "reduce-overhead" in rule.allowed
