"""Translation: the numbers task, vocabularies, sentence-pair files, seq2seq training and
attention maps (genlab's Transformer and a Hugging Face model saved on the spot)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from conftest import quiet_trainer, run_cli

import genlab
from genlab.callbacks.figures import plot_attention
from genlab.cli.attention import main as attention_cli
from genlab.cli.attention import write_attention
from genlab.cli.generate import generate_text
from genlab.data.number_words import number_pairs, number_to_words
from genlab.data.translation import TranslationDataModule, read_pairs
from genlab.errors import GenlabError
from genlab.models.attention_maps import hf_attentions
from genlab.models.seq2seq import Seq2Seq, shift_right
from genlab.run.loading import load_run
from genlab.text.vocabulary import Vocabulary


@pytest.mark.parametrize(
    ("number", "words"),
    [
        (0, "zero"),
        (13, "thirteen"),
        (40, "forty"),
        (42, "forty-two"),
        (305, "three hundred five"),
        (342506, "three hundred forty-two thousand five hundred six"),
        (1_000_019, "one million nineteen"),
    ],
)
def test_number_words(number: int, words: str):
    assert number_to_words(number) == words


def test_number_pairs_are_distinct_and_seeded():
    pairs = number_pairs(500, 999, seed=3)
    assert len({digits for _, digits in pairs}) == 500
    assert pairs == number_pairs(500, 999, seed=3) != number_pairs(500, 999, seed=4)
    assert all(number_to_words(int(digits)) == words for words, digits in pairs)


def test_vocabulary_round_trip_unknowns_and_levels():
    vocab = Vocabulary.build(["Hello, world!", "hello there."], level="word")
    ids = vocab.encode("Hello, there!")
    assert vocab.labels(ids) == ["Hello", ",", "there", "!", "<eos>"]
    assert vocab.decode(ids) == "Hello, there!"
    assert vocab.encode("Goodbye")[0] == Vocabulary.unk_id
    chars = Vocabulary.build(["342", "17"], level="char")
    assert chars.decode(chars.encode("7234")) == "7234"
    assert chars.labels(chars.encode("42") + [0, 0]) == ["4", "2", "<eos>"]
    restored = Vocabulary.from_dict(vocab.to_dict())
    assert restored.tokens == vocab.tokens and restored.level == "word"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a\tb\nno tab here\n", r"pairs.tsv:2: expected 'source<TAB>target'"),
        ("a\tb\nc\t\n", r"pairs.tsv:2: expected"),
        ("a\tb\tc\n", r"pairs.tsv:1: .* \(2 tabs\)"),
        ("\n  \n", r"pairs.tsv has no sentence pairs"),
    ],
)
def test_malformed_pair_files_name_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "pairs.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(GenlabError, match=message):
        read_pairs(path)


def test_non_utf8_pair_file(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes("caf\xe9\tcoffee\n".encode("latin-1"))
    with pytest.raises(GenlabError, match=r"latin1.tsv is not UTF-8"):
        read_pairs(path)


def test_a_byte_order_mark_is_not_a_token(tmp_path):
    path = tmp_path / "bom.tsv"
    path.write_text("\ufeffhello world\thallo welt\nthank you\tdanke\n", encoding="utf-8")
    pairs = read_pairs(path)
    assert pairs[0] == ("hello world", "hallo welt")
    vocab = Vocabulary.build([source for source, _ in pairs], level="char")
    assert "\ufeff" not in vocab.tokens


def test_numbers_datamodule_splits_and_batches():
    dm = TranslationDataModule(task="numbers", num_examples=400, target_level="char")
    dm.setup()
    sizes = {name: len(split) for name, split in dm.splits.items()}
    assert sizes == {"train": 360, "val": 20, "test": 20}
    digits = {name: {t for _, t in pairs} for name, pairs in dm.pairs.items()}
    assert not digits["train"] & digits["test"] and not digits["train"] & digits["val"]
    assert set(dm.target_vocab.tokens[4:]) == set("0123456789")
    source, target = next(iter(dm.test_dataloader()))
    assert source.shape[0] == target.shape[0] == 20
    assert (source != Vocabulary.pad_id).any(0).all()  # trimmed: no all-padding column
    words, number = dm.pairs["test"][0]
    assert dm.source_vocab.decode(source[0].tolist()) == words
    assert dm.target_vocab.decode(target[0].tolist()) == number
    assert target[0].tolist()[len(number)] == Vocabulary.eos_id
    assert dm.example("test") == {"text": words, "target": number}


NUMBERS = [
    "experiment=translate_numbers",
    "data.num_examples=1000",
    "data.max_number=999",
    "data.batch_size=32",
    "model.d_model=64",
    "model.d_ff=128",
    "model.warmup_steps=20",
    "trainer.max_epochs=6",
]


@pytest.fixture(scope="module")
def numbers_run(tmp_path_factory) -> Path:
    """A small numbers run (0..999): learns most of the test set in a few epochs."""
    run_dir = tmp_path_factory.mktemp("numbers") / "run"
    genlab.train([*NUMBERS, f"hydra.run.dir={run_dir}"])
    return run_dir


def test_numbers_run_learns_and_reports_exact_match_and_bleu(numbers_run):
    metrics = json.loads((numbers_run / "metrics.json").read_text())
    for key in ("test/loss", "test/acc", "test/exact_match", "test/bleu", "val/exact_match"):
        assert key in metrics
    assert metrics["test/exact_match"] >= 0.5, metrics
    assert metrics["test/acc"] > 0.8

    model, dm, _ = load_run(numbers_run)  # the vocabularies come back from the checkpoint
    dm.setup()
    assert model.vocabularies[0].tokens == dm.source_vocab.tokens
    sources, targets = zip(*dm.pairs["test"], strict=True)
    translations = model.translate(list(sources))
    exact = sum(t == r for t, r in zip(translations, targets, strict=True)) / len(targets)
    assert exact == pytest.approx(metrics["test/exact_match"], abs=1e-6)

    # loss and acc are means over every target token of the split, not over batches.
    total, correct, tokens = 0.0, 0, 0
    with torch.no_grad():
        for source, target in dm.test_dataloader():
            logits = model.backend.logits(source, shift_right(target, Vocabulary.bos_id))
            real = target != Vocabulary.pad_id
            total += F.cross_entropy(logits[real], target[real], reduction="sum").item()
            correct += (logits.argmax(-1)[real] == target[real]).sum().item()
            tokens += real.sum().item()
    assert metrics["test/loss"] == pytest.approx(total / tokens, rel=1e-4)
    assert metrics["test/acc"] == pytest.approx(correct / tokens, rel=1e-5)

    # genlab-generate prompt=... on a seq2seq run translates.
    assert generate_text(list(sources[:5]), run_dir=numbers_run) == translations[:5]

    other = Vocabulary(["a", "b"], "word")
    with pytest.raises(GenlabError, match="other vocabularies"):
        model.build(other, other)


def test_attention_pngs_and_tensorboard_figures(numbers_run, tmp_path):
    with pytest.raises(GenlabError, match="text= is empty"):  # as GPT-2 refuses it
        write_attention(run_dir=numbers_run, text=" ", out=tmp_path / "empty.png")
    paths = write_attention(run_dir=numbers_run, out=tmp_path / "att.png")
    assert [p.name for p in paths] == ["att_encoder.png", "att_decoder.png", "att_cross.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)

    model, dm, _ = load_run(numbers_run)
    example = dm.example("test")
    maps = {m.name: m for m in model.attention_maps(**example)}
    cross = maps["cross"]
    digits = list(example["target"])
    assert cross.query_labels == [*digits, "<eos>"]
    assert cross.key_labels == [*Vocabulary.split(example["text"], "word"), "<eos>"]
    assert cross.weights.shape == (2, 4, len(digits) + 1, len(cross.key_labels))
    torch.testing.assert_close(cross.weights.sum(-1), torch.ones(cross.weights.shape[:-1]))
    figure = plot_attention(cross)
    assert len(figure.axes) == 2 * 4
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == cross.key_labels
    assert [t.get_text() for t in ax.get_yticklabels()] == cross.query_labels

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(numbers_run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    tags = events.Tags()["images"]
    assert {"attention/encoder", "attention/decoder", "attention/cross"} <= set(tags)
    assert len(events.Images("attention/cross")) == 6  # one per validation epoch


def test_cli_takes_text_and_says_what_is_missing(numbers_run, tmp_path, capsys):
    attention_cli([f"run_dir={numbers_run}", "text=forty-two", f"out={tmp_path / 'x.png'}"])
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {tmp_path / 'x_cross.png'}"
    assert (tmp_path / "x_cross.png").is_file()
    with pytest.raises(SystemExit) as exit:
        attention_cli(["text=hello"])
    assert exit.value.code == 2
    assert capsys.readouterr().err == (
        "genlab: error: give run_dir=<a run> or model.pretrained=<hub name or directory>\n"
    )


@pytest.fixture
def tiny_marian(tmp_path) -> Path:
    """A randomly initialised MarianMT model and a word-level tokenizer, saved like a hub model."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import MarianConfig, MarianMTModel, PreTrainedTokenizerFast

    words = ["<pad>", "</s>", "<unk>", "one", "two", "three", "1", "2", "3", "I", "like", "tea"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    config = MarianConfig(
        vocab_size=len(words),
        d_model=16,
        encoder_layers=1,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=64,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    torch.manual_seed(0)
    path = tmp_path / "tiny-marian"
    MarianMTModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_pretrained_seq2seq_fine_tunes_and_shows_attention(tiny_marian, tmp_path):
    pairs = tmp_path / "pairs.tsv"
    lines = ["one\t1", "two\t2", "three\t3", "one two\t1 2", "two three\t2 3", "I like tea\t3"]
    pairs.write_text("\n".join(lines * 10), encoding="utf-8")
    run_dir = tmp_path / "run"
    metrics = genlab.train(
        [
            "model=seq2seq",
            "data=translation",
            f"model.pretrained={tiny_marian}",
            f"data.path={pairs}",
            "data.val_fraction=0.1",
            "data.test_fraction=0.1",
            "data.batch_size=8",
            "model.warmup_steps=1",
            "model.optimizer.lr=3e-3",
            "trainer.max_epochs=10",
            f"hydra.run.dir={run_dir}",
        ]
    )
    assert 0 <= metrics["test/exact_match"] <= 1 and torch.isfinite(
        torch.tensor(metrics["test/loss"])
    )
    assert metrics["val/loss"] < 1.5  # down from ln(12) = 2.48 of a uniform guess

    paths = write_attention(
        pretrained=str(tiny_marian), text="one two", target="1 2", out=tmp_path / "m.png"
    )
    assert [p.name for p in paths] == ["m_encoder.png", "m_decoder.png", "m_cross.png"]
    model = Seq2Seq(pretrained=str(tiny_marian))
    cross = {m.name: m for m in model.attention_maps("one two", "1 2")}["cross"]
    assert cross.weights.shape == (2, 2, 3, 3)  # decoder layers, heads, 1 2 </s>, one two </s>
    assert cross.key_labels == ["one", "two", "</s>"]
    assert model.hf.config._attn_implementation == "sdpa"  # switched to eager and back


def test_missing_attention_weights_fail_clearly(tiny_marian, monkeypatch):
    model = Seq2Seq(pretrained=str(tiny_marian)).hf
    # A model that cannot switch to eager attention returns None weights under SDPA.
    monkeypatch.setattr(type(model), "set_attn_implementation", lambda self, name: None)
    ids = torch.tensor([[3, 4, 1]])
    with pytest.raises(
        GenlabError, match="returned no attention weights.*attn_implementation='eager'"
    ):
        hf_attentions(model, input_ids=ids, decoder_input_ids=ids)


def test_two_processes_give_the_test_metrics_of_one(tmp_path):
    """ddp_cpu: loss and acc (token means), exact match and BLEU (gathered sentences) of the
    best checkpoint equal one process's: no noise is drawn, so the maths says they must."""

    run_dir = tmp_path / "run"
    result = run_cli(
        *NUMBERS[:-1],
        "data.max_number=99999",  # 5-digit numbers: character 4-grams for BLEU to count
        "trainer.max_epochs=3",
        "data.test_fraction=0.061",  # 61 test pairs: the ranks get 31 and 30
        "accelerator=ddp_cpu",
        "logger=none",
        "callbacks=default",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    model, dm, _ = load_run(run_dir)
    trainer = quiet_trainer(devices=1)
    (single,) = trainer.test(model, datamodule=dm, verbose=False)
    for key in ("test/loss", "test/acc", "test/exact_match", "test/bleu"):
        assert metrics[key] == pytest.approx(single[key], rel=1e-5, abs=1e-6), key
    # BLEU is sacrebleu's corpus score of the greedy translations, on characters.
    import sacrebleu

    sources, references = zip(*dm.pairs["test"], strict=True)
    bleu = sacrebleu.corpus_bleu(
        model.translate(list(sources)), [list(references)], tokenize="char"
    )
    assert metrics["test/bleu"] == pytest.approx(bleu.score, rel=1e-5) and bleu.score > 0
