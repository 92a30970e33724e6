"""Language models from text: the character tokenizer, random windows over a memory-mapped token
file, the token cache, and a character model from genlab-train to plain transformers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from genlab.cli.attention import write_attention
from genlab.cli.export import main as export_main
from genlab.cli.generate import main as generate_main
from genlab.data.text import TextDataModule
from genlab.data.text_source import TextFiles
from genlab.data.token_cache import TokenFile, TokenizerEncode, token_dtype, write_tokens
from genlab.data.token_windows import RandomWindows, TokenWindows
from genlab.errors import GenlabError
from genlab.models.gpt2 import GPT2
from genlab.run.loading import load_run
from genlab.text.chars import END_OF_TEXT, CharEncoder, char_tokenizer, characters_of
from genlab.text.tokenizer import gpt2_tokenizer

TRICKY = "ROMEO: O, she doth\n\n  teach the torches — to burn bright! 😀 café\r\tnaïve e\u0301.\n"
WORDS = ["the", "king", "shall", "speak", "to", "Romeo", "and", "Juliet", "of", "love"]


@pytest.fixture
def play(tmp_path):
    """About 13,000 characters of lines of words, with ROMEO: among them."""
    lines = [
        ("ROMEO: " if i % 5 == 0 else "") + " ".join(WORDS[(i * 7 + j) % 10] for j in range(9))
        for i in range(250)
    ]
    path = tmp_path / "play.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_char_tokenizer_round_trips_and_loads_in_plain_transformers(tmp_path):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tokenizer = char_tokenizer(sorted(set(TRICKY)))
    ids = tokenizer(TRICKY)["input_ids"]
    assert len(ids) == len(TRICKY) and tokenizer.decode(ids) == TRICKY
    assert ids == [sorted(set(TRICKY)).index(c) for c in TRICKY]  # nanoGPT's numbering
    end = tokenizer.eos_token_id
    assert end == tokenizer.pad_token_id == len(set(TRICKY)) == len(tokenizer) - 1
    assert tokenizer(f"O{END_OF_TEXT}O")["input_ids"] == [ids[1], end, ids[1]]
    assert tokenizer.decode([*ids, end], skip_special_tokens=True) == TRICKY
    encode = CharEncoder(sorted(set(TRICKY)))
    assert encode(TRICKY).tolist() == ids and encode(f"O{END_OF_TEXT}O").tolist() == [
        ids[1], end, ids[1],
    ]  # fmt: skip

    tokenizer.save_pretrained(tmp_path / "tok")
    for loaded in (
        AutoTokenizer.from_pretrained(tmp_path / "tok"),
        PreTrainedTokenizerFast.from_pretrained(tmp_path / "tok"),
    ):
        assert loaded(TRICKY)["input_ids"] == ids and loaded.decode(ids) == TRICKY
        assert loaded.eos_token_id == end


def test_continuations_longer_than_the_context_are_made_in_rounds():
    torch.manual_seed(0)
    model = GPT2(tokenizer="char", n_layer=1, n_head=2, n_embd=16, n_positions=16)
    model.build_on(char_tokenizer(sorted(set("the king said: hello\n"))))
    never_end = {"suppress_tokens": [model.tokenizer.eos_token_id]}
    texts = model.generate_text(
        ["the king", "hello"],
        max_new_tokens=50,
        do_sample=True,
        num_return_sequences=2,
        **never_end,
    )
    assert len(texts) == 4 and all(len(text) == 50 for text in texts)
    [greedy] = model.generate_text(["the king"], max_new_tokens=50, **never_end)
    [within] = model.generate_text(["the king"], max_new_tokens=8, **never_end)
    assert len(greedy) == 50 and greedy.startswith(within)  # the first round is that one call


def test_nanogpt_shape_keeps_biases_at_zero_and_loads_in_plain_transformers(tmp_path):
    from transformers import GPT2LMHeadModel

    torch.manual_seed(0)
    model = GPT2(
        tokenizer="char", n_layer=1, n_head=2, n_embd=16, n_positions=16, activation="gelu",
        bias=False,
    )  # fmt: skip
    model.build_on(char_tokenizer(sorted(set("the king said: hello\n"))))
    biases = [p for n, p in model.model.named_parameters() if n.endswith(".bias")]
    assert biases and all(not p.requires_grad and not p.any() for p in biases)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    ids = torch.randint(len(model.tokenizer), (2, 9))
    for _ in range(3):
        optimizer.zero_grad()
        model.compute_losses((ids[:, :-1], ids[:, 1:]), "train")["loss"].backward()
        optimizer.step()
    assert all(not p.any() for p in biases)  # still a network without biases
    model.export_pretrained(tmp_path / "out")
    plain = GPT2LMHeadModel.from_pretrained(tmp_path / "out").eval()
    assert plain.config.activation_function == "gelu"
    model.eval()
    assert torch.allclose(plain(ids).logits, model(ids), atol=1e-6)


def test_unknown_characters_are_refused_naming_them():
    torch.manual_seed(0)
    model = GPT2(tokenizer="char", n_layer=1, n_head=2, n_embd=16, n_positions=32)
    model.build_on(char_tokenizer(sorted(set("the king said: hello\n"))))
    assert len(model.generate_text(["the king"], max_new_tokens=3)[0]) == 3
    with pytest.raises(GenlabError) as refused:
        model.generate_text(["the Qeen!"], max_new_tokens=3)
    assert str(refused.value).startswith("the prompt has 2 character(s)")
    assert "'!' 'Q'" in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(GenlabError, match="text= has 1 character"):
        model.attention_maps("the Q")
    prompts = GPT2(tokenizer="char", n_layer=1, n_head=2, n_embd=16, sample_prompts=["ROMEO:"])
    with pytest.raises(GenlabError, match="model.sample_prompts has"):
        prompts.build_on(char_tokenizer(sorted(set("romeo:"))))


def test_random_windows_reach_every_start_and_never_read_past_the_end():
    tokens = np.arange(200, dtype=np.uint16)
    windows = TokenWindows(tokens, block_size=8, stride=1)
    assert len(windows) == 192  # starts 0 .. 191: the last window ends with token 199
    torch.manual_seed(0)
    starts = list(RandomWindows(len(windows), batch_size=12, batches=500))
    assert len(starts) == 6000 and set(starts) == set(range(192))
    inputs, targets = windows.__getitems__(starts[:12])
    assert inputs.shape == targets.shape == (12, 8) and inputs.dtype == torch.int64
    assert torch.equal(targets[:, :-1], inputs[:, 1:])
    last_inputs, last_targets = windows[191]
    assert last_inputs.tolist() == list(range(191, 199)) and last_targets[-1] == 199
    with pytest.raises(IndexError):
        windows.windows(np.array([192]))
    torch.manual_seed(0)
    assert list(RandomWindows(192, 12, 500)) == starts  # the seed repeats them
    blocks = TokenWindows(tokens, block_size=8, stride=8)
    assert len(blocks) == 24 and blocks[23][1][-1] == 192  # (200 - 1) // 8 blocks


def test_memory_mapped_windows_are_the_texts_windows(play, tmp_path):
    def setup():
        dm = TextDataModule(
            path=str(play),
            tokenizer="char",
            sampling="random_windows",
            block_size=16,
            batch_size=4,
            val_fraction=0.1,
            test_fraction=0.0,
            cache_dir=str(tmp_path / "cache"),
        )
        dm.setup()
        return dm

    dm = setup()
    text = play.read_text()
    ids = torch.tensor(dm.text_tokenizer()(text)["input_ids"])
    assert isinstance(dm.splits["train"].tokens, TokenFile)
    n_train = int(len(ids) * 0.9)  # nanoGPT's split
    assert len(dm.splits["train"].tokens) == n_train
    assert len(dm.splits["val"].tokens) == len(ids) - n_train
    starts = np.array([0, 5, 777, n_train - 17])
    inputs, targets = dm.splits["train"].__getitems__(starts.tolist())
    expected = torch.stack([ids[s : s + 17] for s in starts])
    assert torch.equal(inputs, expected[:, :-1]) and torch.equal(targets, expected[:, 1:])
    val = dm.splits["val"]
    assert torch.equal(val[0][0], ids[n_train + val.starts[0] : n_train + val.starts[0] + 16])
    assert len(dm.train_dataloader()) == n_train // (16 * 4)
    # Validation windows are drawn once; test scores the validation text in blocks.
    assert np.array_equal(setup().splits["val"].starts, val.starts)
    assert len(dm.splits["test"]) == (len(ids) - n_train - 1) // 16
    assert dm.example("test", 0, 8)["text"] == text[n_train : n_train + 8]


def test_token_file_is_uint16_reused_and_joins_files(play, tmp_path):
    (tmp_path / "more.txt").write_text("ROMEO: more\n", encoding="utf-8")
    glob = str(tmp_path / "*.txt")

    def setup(tokenizer):
        dm = TextDataModule(
            path=glob, tokenizer=tokenizer, block_size=16, cache_dir=str(tmp_path / "cache")
        )
        dm.setup()
        return dm

    dm = setup("char")
    tokenizer = dm.text_tokenizer()
    (bin_file,) = (tmp_path / "cache" / "text_tokens").glob("*.bin")
    (chars,) = (tmp_path / "cache" / "text_tokens").glob("*_chars.json")
    assert json.loads(chars.read_text()) == sorted(set(play.read_text() + "ROMEO: more\n"))
    expected = tokenizer("ROMEO: more\n")["input_ids"] + [tokenizer.eos_token_id]
    expected += tokenizer(play.read_text())["input_ids"]  # sorted: more.txt, then play.txt
    assert np.array_equal(np.fromfile(bin_file, dtype=np.uint16), expected)
    assert bin_file.stat().st_size == 2 * len(expected)
    written = bin_file.stat().st_mtime_ns, chars.stat().st_mtime_ns
    assert np.array_equal(setup("char").token_ids(), expected)
    assert (bin_file.stat().st_mtime_ns, chars.stat().st_mtime_ns) == written  # not redone
    assert token_dtype(50257) == np.uint16 and token_dtype(65536) == np.uint32


def test_bpe_chunks_tokenized_in_processes_equal_the_whole_text(play, tmp_path):
    """Chunks end between lines, so GPT-2's BPE gives the same ids as on the whole text; two
    processes give them in order."""
    tokenizer = gpt2_tokenizer()
    text = play.read_text() + "\n\n  two blank lines, spaces  \nand an end"
    (tmp_path / "b.txt").write_text(text, encoding="utf-8")
    source = TextFiles(str(tmp_path / "b.txt"))
    encode = TokenizerEncode(tokenizer, np.uint16)
    path = tmp_path / "tokens.bin"
    count = write_tokens(source.chunks(300), encode, path, tokenizer.eos_token_id, processes=2)
    assert len(list(source.chunks(300))) > 10
    whole = tokenizer(text)["input_ids"]
    assert count == len(whole) and np.fromfile(path, dtype=np.uint16).tolist() == whole


def tiny_char_experiment(text) -> list[str]:
    """experiment=gpt_shakespeare_char on `text` with a one-layer model of width 16."""
    return [
        "experiment=gpt_shakespeare_char",
        f"data.path={text}",
        "model.n_layer=1",
        "model.n_head=2",
        "model.n_embd=16",
        "data.block_size=32",
        "model.n_positions=32",
    ]


def test_char_model_trains_then_generates_exports_and_draws_from_its_run(
    train_cli, play, tmp_path, capfd
):
    run_dir = tmp_path / "run"
    result = train_cli(
        *tiny_char_experiment(play),
        "trainer.max_steps=12",
        "trainer.val_check_interval=6",
        "trainer.limit_val_batches=2",
        "model.warmup_steps=2",
        "logger=none",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) >= {"train/loss", "val/loss", "val/loss_best", "test/loss", "test/ppl"}
    vocab = len(set(play.read_text())) + 1
    assert metrics["test/loss"] < math.log(vocab)  # it learned something
    config = (run_dir / "config.yaml").read_text()
    assert "tokenizer: char" in config and "sampling: random_windows" in config

    characters = sorted(set(play.read_text()))
    play.unlink()  # from here on, the run directory alone
    model, _, _ = load_run(run_dir)
    assert characters_of(model.tokenizer) == characters
    out = tmp_path / "hf"
    export_main([f"run_dir={run_dir}", f"out={out}"])
    from transformers import AutoTokenizer, GPT2LMHeadModel

    plain = GPT2LMHeadModel.from_pretrained(out).eval()
    tokenizer = AutoTokenizer.from_pretrained(out)
    encoded = tokenizer("ROMEO:", return_tensors="pt")
    output = plain.generate(
        **encoded, max_new_tokens=20, do_sample=False, pad_token_id=tokenizer.eos_token_id
    )
    expected = tokenizer.decode(output[0, 6:], skip_special_tokens=True)
    capfd.readouterr()
    generate_main([f"run_dir={run_dir}", "prompt=ROMEO:", "max_new_tokens=20"])
    assert capfd.readouterr().out == expected + "\n" and expected
    with pytest.raises(SystemExit):
        generate_main([f"run_dir={run_dir}", "prompt=JULIET:"])
    assert "character(s) this character-level model has no token for" in capfd.readouterr().err
    (attention,) = model.attention_maps("ROMEO: the king")
    assert attention.query_labels == list("ROMEO: the king")
    paths = write_attention(run_dir=run_dir, text="the king", out=tmp_path / "a.png")
    assert [p.name for p in paths] == ["a_self.png"]


def test_gpt_logs_tokens_per_second_and_model_flops_utilization(train_cli, play, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    result = train_cli(
        *tiny_char_experiment(play),
        "trainer.max_steps=6",
        "trainer.val_check_interval=6",
        "trainer.limit_val_batches=1",
        "test=false",
        "callbacks.epoch_timer.peak_flops=1e12",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    [tokens] = [e.value for e in events.Scalars("time/tokens_per_s")]
    [seconds] = [e.value for e in events.Scalars("time/epoch_s")]
    [mfu] = [e.value for e in events.Scalars("perf/mfu")]
    assert tokens == pytest.approx(6 * 12 * 32 / seconds, rel=1e-4)  # 6 batches of 12 windows
    model, _, _ = load_run(run_dir)
    # 6 x parameters without position embeddings + 12 x layers x width x context
    params = sum(p.numel() for p in model.model.parameters()) - 32 * 16
    assert model.flops_per_token() == 6 * params + 12 * 1 * 16 * 32
    assert mfu == pytest.approx(model.flops_per_token() * tokens / 1e12, rel=1e-4)
