"""GPT-2: offline tokenizer, text blocks, from_pretrained, perplexity, generation, HF export."""

from __future__ import annotations

import functools
import http.server
import json
import math
import threading

import numpy as np
import pytest
import torch
from conftest import quiet_trainer

from genlab.callbacks.figures import plot_attention
from genlab.cli.attention import write_attention
from genlab.cli.export import main as export_main
from genlab.cli.generate import main as generate_main
from genlab.data.text import TextDataModule
from genlab.errors import GenlabError
from genlab.models.gpt2 import GPT2
from genlab.models.schedules import warmup_cosine
from genlab.run.loading import load_run
from genlab.text.tokenizer import gpt2_tokenizer

TINY = [
    "model=gpt2",
    "data=text",
    "model.n_layer=1",
    "model.n_head=2",
    "model.n_embd=32",
    "model.n_positions=32",
    "data.block_size=16",
    "data.batch_size=8",
    "logger=none",
    "model.warmup_steps=5",
]


@pytest.fixture
def corpus(tmp_path):
    words = ["the", "king", "shall", "speak", "to", "Romeo", "and", "Juliet", "of", "love"]
    lines = [" ".join(words[(i * 7 + j) % 10] for j in range(9)) + "." for i in range(120)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_offline_tokenizer_is_gpt2s_bpe():
    tokenizer = gpt2_tokenizer()
    ids = tokenizer("The transformer architecture is")["input_ids"]
    assert ids == [464, 47385, 10959, 318]
    assert tokenizer.decode(ids) == "The transformer architecture is"
    assert len(tokenizer) == 50257 and tokenizer.pad_token_id == tokenizer.eos_token_id == 50256


def test_blocks_cover_the_corpus_in_order_and_are_cached(corpus, tmp_path):
    dm = TextDataModule(path=str(corpus), block_size=16, cache_dir=str(tmp_path / "cache"))
    dm.setup()
    ids = torch.tensor(gpt2_tokenizer()(corpus.read_text())["input_ids"])
    start = 0
    for name in ("train", "val", "test"):  # in order, each split's tokens in blocks
        windows = dm.splits[name]
        inputs, targets = windows.__getitems__(list(range(len(windows))))
        n = len(windows.tokens)
        assert torch.equal(inputs.flatten(), ids[start : start + (n - 1) // 16 * 16])
        assert torch.equal(targets, ids[start + 1 : start + 1 + inputs.numel()].view(-1, 16))
        start += n
    assert start == len(ids)
    cached = list((tmp_path / "cache" / "text_tokens").glob("*.bin"))
    assert len(cached) == 1
    assert np.array_equal(np.fromfile(cached[0], dtype=np.uint16), ids.numpy())

    corpus.write_text(corpus.read_text() + " More text.", encoding="utf-8")
    TextDataModule(path=str(corpus), block_size=16, cache_dir=str(tmp_path / "cache")).setup()
    assert len(list((tmp_path / "cache" / "text_tokens").glob("*.bin"))) == 2  # keyed by content


def test_from_pretrained_loads_a_saved_model_and_its_tokenizer(tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    saved = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=16, n_positions=32))
    saved.save_pretrained(tmp_path / "tiny")
    gpt2_tokenizer().save_pretrained(tmp_path / "tiny")
    model = GPT2(pretrained=str(tmp_path / "tiny"))
    assert model.context_length == 32
    for (name, a), b in zip(
        saved.state_dict().items(), model.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    paths = write_attention(
        pretrained=str(tmp_path / "tiny"), text="The king", out=tmp_path / "a.png"
    )
    assert [p.name for p in paths] == ["a_self.png"]
    (attention,) = model.attention_maps("The king is dead")
    assert attention.key_labels == ["The", "Ġking", "Ġis", "Ġdead"]
    assert attention.weights.shape == (1, 2, 4, 4)
    with pytest.raises(GenlabError, match="model.pretrained=null"):
        GPT2(pretrained=str(tmp_path / "missing"))
    from transformers import OPTConfig, OPTForCausalLM

    OPTForCausalLM(
        OPTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, ffn_dim=32)
    ).save_pretrained(tmp_path / "opt")
    with pytest.raises(GenlabError, match="is a opt model; model=gpt2 takes GPT-2 checkpoints"):
        GPT2(pretrained=str(tmp_path / "opt"))


def test_optimizer_groups_and_schedule():
    model = GPT2(n_layer=1, n_head=2, n_embd=16, n_positions=32)

    class Trainer:
        estimated_stepping_batches = 100

    model._trainer = Trainer()
    config = model.configure_optimizers()
    decay, no_decay = config["optimizer"].param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(
        p.dim() == 1 for p in no_decay["params"]
    )
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))
    assert warmup_cosine(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(100, 10, 100, 0.1) == pytest.approx(0.1)


def test_train_export_and_generate_agree(train_cli, corpus, tmp_path, capfd):
    run_dir = tmp_path / "run"
    result = train_cli(
        *TINY,
        f"data.path={corpus}",
        "trainer.max_epochs=2",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for stage in ("train", "val", "test"):
        assert metrics[f"{stage}/ppl"] == pytest.approx(
            math.exp(metrics[f"{stage}/loss"]), rel=1e-5
        )
    assert metrics["val/loss"] < math.log(50257)  # it learned something

    # The console scripts' entry points, called in this process (a fresh interpreter each would
    # cost ~10 s of imports).
    out = tmp_path / "hf"
    export_main([f"run_dir={run_dir}", f"out={out}"])
    from transformers import AutoTokenizer, GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = "the king shall"
    encoded = tokenizer(prompt, return_tensors="pt")
    output = model.generate(
        **encoded, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.eos_token_id
    )
    expected = tokenizer.decode(
        output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True
    )
    capfd.readouterr()
    generate_main([f"run_dir={run_dir}", f"prompt={prompt}", "max_new_tokens=12"])
    assert capfd.readouterr().out.rstrip("\n") == expected
    assert expected.strip()  # a real continuation, not nothing

    generate_main(
        [
            f"run_dir={run_dir}",
            'prompt=["the king","Romeo"]',
            "do_sample=true",
            "top_k=5",
            "num_return_sequences=2",
            "max_new_tokens=5",
            "seed=1",
        ]
    )
    assert capfd.readouterr().out.count("--- ") == 4

    # genlab-attention without text=: the first test block's first 32 tokens.
    paths = write_attention(run_dir=run_dir, out=tmp_path / "att.png")
    assert [p.name for p in paths] == ["att_self.png"] and paths[0].stat().st_size > 10_000
    model, datamodule, _ = load_run(run_dir)
    (attention,) = model.attention_maps(**datamodule.example("test"))
    assert attention.weights.shape == (1, 2, 16, 16)  # layers, heads, tokens (one block of 16)
    first_block = datamodule.splits["test"][0][0].tolist()
    assert attention.query_labels == gpt2_tokenizer().convert_ids_to_tokens(first_block)
    above = torch.ones(16, 16, dtype=torch.bool).triu(1)
    assert torch.all(attention.weights[..., above] == 0)  # causal
    figure = plot_attention(attention)
    assert len(figure.axes) == 2
    labels = [t.get_text() for t in figure.axes[1].get_yticklabels()]
    assert labels == [t.replace("Ġ", "·").replace("Ċ", "\\n") for t in attention.query_labels]


def test_missing_corpus_is_downloaded_once_from_its_url(tmp_path, corpus):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(corpus.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = tmp_path / "data" / "shakespeare.txt"
        url = f"http://127.0.0.1:{server.server_port}/{corpus.name}"
        dm = TextDataModule(path=str(target), url=url, block_size=16, cache_dir=str(tmp_path / "c"))
        dm.prepare_data()
        assert target.read_text() == corpus.read_text()
        bad = TextDataModule(path=str(tmp_path / "x.txt"), url=url + ".missing", block_size=16)
        with pytest.raises(GenlabError, match="point data.path at your copy"):
            bad.prepare_data()
    finally:
        server.shutdown()


def test_gradient_checkpointing_and_bf16_mixed_train(corpus, tmp_path):

    torch.manual_seed(0)
    model = GPT2(
        n_layer=2, n_head=2, n_embd=32, n_positions=32, gradient_checkpointing=True, warmup_steps=1
    )
    assert model.model.is_gradient_checkpointing
    before = [p.detach().clone() for p in model.parameters()]
    datamodule = TextDataModule(
        path=str(corpus), block_size=16, batch_size=4, cache_dir=str(tmp_path / "cache")
    )
    trainer = quiet_trainer(limit_train_batches=3, limit_val_batches=1, precision="bf16-mixed")
    trainer.fit(model, datamodule=datamodule)
    assert math.isfinite(trainer.callback_metrics["val/loss"])
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_prompts_and_texts_are_taken_as_typed():
    from genlab.cli.args import parse_args

    args = parse_args(
        ["prompt=ROMEO:", "text=KING: 3", "max_new_tokens=5", "model.pretrained=gpt2"],
        frozenset({"prompt", "text"}),
    )
    assert args == {
        "prompt": "ROMEO:",  # YAML alone would make this {"ROMEO": None}
        "text": "KING: 3",
        "max_new_tokens": 5,
        "model": {"pretrained": "gpt2"},
    }
    assert parse_args(['prompt=["a: b","c"]'], frozenset({"prompt"})) == {"prompt": ["a: b", "c"]}
    assert parse_args(["out=2024", "run_dir=007", "n=8"]) == {
        "out": "2024",
        "run_dir": "007",
        "n": 8,
    }


def test_attention_figures_callback_draws_a_gpt2_validation_block(corpus, tmp_path):
    from types import SimpleNamespace

    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from genlab.callbacks.attention_figures import AttentionFigures

    torch.manual_seed(0)
    model = GPT2(n_layer=1, n_head=2, n_embd=16, n_positions=32).eval()
    datamodule = TextDataModule(path=str(corpus), block_size=16, cache_dir=str(tmp_path / "c"))
    logger = TensorBoardLogger(tmp_path, name="tb", version="")
    trainer = SimpleNamespace(
        sanity_checking=False, is_global_zero=True, loggers=[logger], datamodule=datamodule,
        fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(_batches_that_stepped=7)),
    )  # fmt: skip
    AttentionFigures().on_validation_epoch_end(trainer, model)  # the first validation block
    logger.experiment.flush()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    (image,) = events.Images("attention/self")
    assert image.step == 7
    second_block = datamodule.splits["val"][1][0][:16].tolist()
    (attention,) = model.attention_maps(**datamodule.example("val", index=1))
    assert attention.query_labels == gpt2_tokenizer().convert_ids_to_tokens(second_block)


def test_token_cache_key_follows_merges_and_options():
    from transformers import GPT2Tokenizer

    from genlab.text.tokenizer import tokenizer_key

    vocab = {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġa": 4, "<|endoftext|>": 5}
    same_vocab = [
        GPT2Tokenizer(vocab=vocab, merges=[("a", "b")]),
        GPT2Tokenizer(vocab=vocab, merges=[("Ġ", "a")]),
        GPT2Tokenizer(vocab=vocab, merges=[("a", "b")], add_prefix_space=True),
    ]
    assert len({tuple(t.encode("a ab")) for t in same_vocab}) == 3  # three different id streams
    assert len({tokenizer_key(t) for t in same_vocab}) == 3  # so three cache keys


def test_a_run_without_an_end_is_refused_by_the_schedule(tmp_path):
    model = GPT2(n_layer=1, n_head=2, n_embd=16, n_positions=32)
    trainer = quiet_trainer(default_root_dir=tmp_path, max_epochs=-1, max_steps=-1)
    trainer.strategy.connect(model)
    model.trainer = trainer
    with pytest.raises(GenlabError, match="trainer.max_epochs or trainer.max_steps"):
        model.configure_optimizers()


def test_prompts_longer_than_the_context_keep_their_ends():
    torch.manual_seed(0)
    model = GPT2(n_layer=1, n_head=2, n_embd=16, n_positions=16)
    long_prompt = "the king is dead, long live the king " * 6  # about 50 tokens
    [continuation] = model.generate_text([long_prompt], max_new_tokens=40)
    [full] = model.generate_text([long_prompt], max_new_tokens=40, full_text=True)
    kept = full[: len(full) - len(continuation)]
    assert full.endswith(continuation) and continuation
    assert long_prompt.endswith(kept) and 0 < len(kept) < len(long_prompt)  # the prompt's end
