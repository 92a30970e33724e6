"""Bad configs and bad files: each stops genlab-train with exit code 2 and one line per problem
that names the key or the file, and no traceback.

They run in this process through the CLI's own entry point (`genlab.cli.train.main` with argv set),
which is what `genlab-train` calls, so that each costs a fraction of a second instead of a
fresh interpreter.
"""

from __future__ import annotations

import gzip
import io
import shutil
import struct
import traceback
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_mnist_dir, write_idx
from PIL import Image

import genlab
from genlab.cli.evaluate import main as evaluate_main
from genlab.cli.generate import main as generate_main

FAST = ["logger=none", "trainer.max_epochs=1", "+trainer.limit_train_batches=2"]
QUIET = [
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.image_grids=null",
]


@pytest.fixture
def cli(train_cli, tmp_path):
    """Run `genlab-train ARGS` in this process, small and quiet; return (exit code, stderr)."""

    def call(*args: str) -> tuple[int, str]:
        run_dir = (
            []
            if any(a.startswith(("run_dir=", "hydra.run.dir=")) for a in args)
            else [f"hydra.run.dir={tmp_path / 'run'}"]
        )
        result = train_cli(*FAST, *QUIET, *run_dir, *args, cwd=tmp_path)
        return result.returncode, result.stderr

    return call


def assert_refused(code: int, err: str, *needles: str, lines: int = 1) -> None:
    """Exit code 2, `lines` error lines holding every needle, and no traceback."""
    assert code == 2, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith("genlab: error: ")]
    assert len(errors) == lines, err[-2000:]
    for needle in needles:
        assert needle in "\n".join(errors), (needle, errors)


@pytest.mark.parametrize(
    "args, needles",
    [
        (["data.batch_size=0"], ["data.batch_size=0", "positive integer"]),
        (["data.batch_size=-4"], ["data.batch_size=-4", "positive integer"]),
        (["data.batch_size=abc"], ["data.batch_size=abc", "positive integer"]),
        (["model.latent_dim=0"], ["model.latent_dim=0", "positive integer"]),
        (["model.optimizer.lr=-0.001"], ["model.optimizer.lr=-0.001", "positive number"]),
        (["model=gan", "model.generator_optimizer.lr=0"], ["generator_optimizer.lr=0"]),
        (
            ["model=dcgan", "model.discriminator_norm=layer"],
            ["model.discriminator_norm=layer", "batch or spectral"],
        ),
        (["trainer.max_epochs=0"], ["trainer.max_epochs=0", "-1 for no limit"]),
        (["trainer.max_epochs=1.5"], ["trainer.max_epochs=1.5", "positive integer"]),
        (["data.val_fraction=1.5"], ["data.val_fraction=1.5", "[0, 1)"]),
        (["trainer.precision=fp16"], ["trainer.precision=fp16", "bf16-mixed", "32-true"]),
        (["accelerator=cpu", "trainer.precision=16-mixed"], ["trainer.precision=16-mixed", "CPU"]),
        (["accelerator=cpu", "trainer.devices=4096"], ["trainer.devices=4096", "cores"]),
        (["trainer.accelerator=quantum"], ["trainer.accelerator=quantum", "cpu"]),
        (["data=image_folder"], ["data.path", "no value given"]),
        (
            ["model=gpt2", "data=text", "data.path=x.txt", "data.block_size=512"],
            ["data.block_size=512", "256", "model.n_positions"],
        ),
        (["ckpt_path=nowhere.ckpt"], ["ckpt_path=nowhere.ckpt", "no checkpoint at"]),
        (["train=maybe"], ["train=maybe", "true or false"]),
        (
            ["model=seq2seq", "data=translation", "data.task=numbers", "model.n_heads=0"],
            ["model.n_heads=0", "positive integer"],
        ),
        (["seed=-1"], ["seed=-1", "0 to 4294967295"]),
        (["seed=4294967296"], ["seed=4294967296", "0 to 4294967295"]),
        (["model=vae", "data=text", "data.path=x.txt"], ["VAE", "TextDataModule", "images"]),
        (["model=gpt2", "data=digits"], ["GPT2", "token blocks", "data=text"]),
        (["model.kl_warmup_epochs=abc"], ["model.kl_warmup_epochs=abc", "number >= 0"]),
        (["data.path=2024", "data=text", "model=gpt2"], ["data.path=2024", "quote"]),
        (
            ["model=gan", "model.discriminator_steps=abc"],
            ["model.discriminator_steps=abc", "positive integer"],
        ),
        (["model=dcgan", "data.dims=[1,12,12]"], ["data.dims=[1, 12, 12]", "4*2^k or 7*2^k"]),
        (
            ["data.val_fraction=0.6", "data.test_fraction=0.6"],
            ["data.val_fraction=0.6 + data.test_fraction=0.6", "below 1"],
        ),
        (["data.value_range=[-1,1]"], ["data.value_range=[-1, 1]", "VAE", "[0, 1]"]),
        (["model=ae", "data.value_range=[-1,1]"], ["Autoencoder", "model.value_range=[0, 1]"]),
        (["model.value_range=[-1,1]"], ["model.value_range=[-1, 1]", "Sigmoid", "[0, 1]"]),
        (["model=gan", "model.value_range=[0,1]"], ["model.value_range=[0, 1]", "Tanh", "[-1, 1]"]),
        (["model=gan", "model.value_range=[1,0]"], ["model.value_range=[1, 0]", "low < high"]),
        (["model=dcgan", "data.dims=[1,8,16]"], ["data.dims=[1, 8, 16]", "square"]),
        (
            ["model=dcgan", "data=image_folder", "data.path=.", "data.image_size=12"],
            ["data.image_size=12", "4*2^k or 7*2^k"],
        ),
        (
            ["model=seq2seq", "data=translation", "data.task=numbers", "data.target_level=byte"],
            ["data.target_level=byte", "word or char"],
        ),
    ],
    ids=lambda value: "_".join(value) if isinstance(value, list) else None,
)
def test_bad_config_values(cli, args, needles):
    assert_refused(*cli(*args), *needles)


def test_every_bad_value_gets_its_own_line(cli):
    code, err = cli("data.batch_size=0", "model.latent_dim=-2", "trainer.max_epochs=0")
    assert_refused(code, err, "data.batch_size=0", "model.latent_dim=-2", "max_epochs=0", lines=3)


@pytest.mark.parametrize("problem", ["no_gpu", "too_many"])
def test_gpus_that_this_machine_does_not_have(cli, monkeypatch, problem):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0 if problem == "no_gpu" else 1)
    code, err = cli("accelerator=gpu", "trainer.devices=3")
    if problem == "no_gpu":
        assert_refused(code, err, "trainer.accelerator=gpu", "no CUDA GPU")
    else:
        assert_refused(code, err, "trainer.devices=3", "1 CUDA GPU")


def test_unknown_group_option_lists_the_choices(cli):
    """Hydra reports this itself (exit code 1): the missing option and every available one."""
    code, err = cli("model=xyz")
    assert code == 1 and "Traceback" not in err
    assert "Could not find 'model/xyz'" in err
    assert all(name in err for name in ("ae", "vae", "gan", "gpt2"))


# Checkpoints and run directories: one small finished VAE run shared by the tests below.


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("vae") / "run"
    genlab.train([*FAST, *QUIET, "test=false", f"hydra.run.dir={run_dir}"])
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    return run_dir


def test_checkpoint_of_another_model(cli, vae_run):
    code, err = cli("model=ae", f"ckpt_path={vae_run}/checkpoints/last.ckpt")
    assert_refused(code, err, "ckpt_path=", "genlab.models.vae.VAE", "genlab.models.ae.Autoencoder")


def test_checkpoint_with_other_sizes_names_what_it_was_trained_with(cli, vae_run):
    code, err = cli("model.latent_dim=5", f"ckpt_path={vae_run}/checkpoints/last.ckpt")
    assert_refused(code, err, "does not fit", "model.latent_dim=2")


def test_corrupt_checkpoint(cli, tmp_path, vae_run):
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes((vae_run / "checkpoints" / "last.ckpt").read_bytes()[:5000])
    assert_refused(*cli(f"ckpt_path={damaged}"), f"ckpt_path={damaged}", "weights_only=True")


class Payload:
    """Stands for anything that needs code to unpickle (the way a malicious file runs code)."""


def test_checkpoint_that_needs_code_to_load_is_refused(cli, tmp_path, vae_run):
    checkpoint = torch.load(vae_run / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["extra"] = Payload()
    unsafe = tmp_path / "unsafe.ckpt"
    torch.save(checkpoint, unsafe)
    assert_refused(*cli(f"ckpt_path={unsafe}"), f"ckpt_path={unsafe}", "weights_only=True")


def test_a_finished_run_directory_is_not_overwritten(cli, vae_run):
    kept = [vae_run / "checkpoints" / "last.ckpt", *sorted((vae_run / ".hydra").iterdir())]
    before = [path.read_bytes() for path in kept]
    code, err = cli(f"run_dir={vae_run}", "trainer.max_epochs=3")
    assert_refused(code, err, f"run_dir={vae_run}", "completed", "ckpt_path=last", "overwrite=true")
    assert [path.read_bytes() for path in kept] == before  # Hydra's copy of its config too


def test_a_refused_new_run_leaves_no_folder(train_cli, tmp_path):
    result = train_cli(*FAST, *QUIET, "data.batch_size=0", cwd=tmp_path)
    assert_refused(result.returncode, result.stderr, "data.batch_size=0")
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").iterdir())


# genlab-generate and genlab-eval: the same checks of a checkpoint, and of their arguments.


@pytest.fixture(scope="module")
def dcgan_checkpoint(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("dcgan") / "run"
    small = ["model=dcgan", "model.generator_width=8", "model.discriminator_width=8"]
    genlab.train([*FAST, *QUIET, *small, "test=false", f"hydra.run.dir={run_dir}"])
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.fixture
def tool(capsys, monkeypatch):
    """Run a small CLI's `main(ARGS)` in this process; return (exit code, stderr) as its console
    script would (an exception that escapes: its traceback and exit code 1)."""
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)

    def call(main, *args: str) -> tuple[int, str]:
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exit:
            code = exit.code if isinstance(exit.code, int) else 1
        except Exception:
            traceback.print_exc()
            code = 1
        return code, capsys.readouterr().err

    return call


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


TOOLS = pytest.mark.parametrize("main", [generate_main, evaluate_main], ids=["generate", "eval"])


@TOOLS
def test_tools_refuse_a_checkpoint_of_another_model(tool, main, vae_run, dcgan_checkpoint):
    before = snapshot(vae_run)
    code, err = tool(main, f"run_dir={vae_run}", f"ckpt_path={dcgan_checkpoint}")
    assert_refused(code, err, "genlab.models.dcgan.DCGAN", "genlab.models.vae.VAE")
    assert snapshot(vae_run) == before


@TOOLS
def test_tools_refuse_a_checkpoint_with_other_sizes(tool, main, vae_run, tmp_path):
    checkpoint = torch.load(vae_run / "checkpoints" / "last.ckpt", weights_only=True)
    name = next(k for k, v in checkpoint["state_dict"].items() if v.ndim == 2)
    checkpoint["state_dict"][name] = torch.zeros(3, 3)
    resized = tmp_path / "resized.ckpt"
    torch.save(checkpoint, resized)
    code, err = tool(main, f"run_dir={vae_run}", f"ckpt_path={resized}")
    assert_refused(code, err, f"ckpt_path={resized}", "does not fit", f"{name} is [3, 3] there")


@TOOLS
def test_tools_refuse_a_corrupt_checkpoint(tool, main, vae_run, tmp_path):
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes((vae_run / "checkpoints" / "last.ckpt").read_bytes()[:5000])
    code, err = tool(main, f"run_dir={vae_run}", f"ckpt_path={damaged}")
    assert_refused(code, err, f"ckpt_path={damaged}", "weights_only=True")


@pytest.mark.parametrize(
    "args, needles",
    [
        (["n=abc"], ["n=abc", "positive integer"]),
        (["n=0"], ["n=0", "positive integer"]),
        (["n=-3"], ["n=-3", "positive integer"]),
        (["seed=abc"], ["seed=abc", "an integer"]),
        (["nrow=0"], ["nrow=0", "positive integer"]),
        (["out={run}"], ["out={run}", "is a folder", "samples.png"]),
        (["out=x.jpgg"], ["out=x.jpgg", ".jpgg", ".png"]),
        (["out=grid"], ["out=grid", "no extension", ".png"]),
        (["n=0", "nrow=0"], ["n=0", "nrow=0"]),
        (["n=1000000000"], ["n=1000000000", "up to 4096"]),
        (["out={run}/config.yaml/grid.png"], ["config.yaml is a file"]),
    ],
    ids=lambda value: "_".join(value) if isinstance(value, list) else None,
)
def test_generate_refuses_bad_arguments(tool, vae_run, tmp_path, monkeypatch, args, needles):
    monkeypatch.chdir(tmp_path)
    before = snapshot(vae_run)
    args = [a.format(run=vae_run) for a in args]
    code, err = tool(generate_main, f"run_dir={vae_run}", *args)
    assert_refused(code, err, *(n.format(run=vae_run) for n in needles), lines=len(args))
    assert snapshot(vae_run) == before
    assert not list(tmp_path.iterdir())


# Bad data files.


def damage_mnist(folder: Path, damage: str) -> Path:
    """Damage one of the MNIST files in `folder`; return the damaged file."""
    images = folder / "train-images-idx3-ubyte.gz"
    if damage == "truncated_gzip":
        images.write_bytes(images.read_bytes()[:-200])
    elif damage == "not_gzip":
        images.write_bytes(b"<html>404 Not Found</html>")
    elif damage == "bad_header":
        images.write_bytes(gzip.compress(b"\x01\x02\x03\x04" + bytes(100)))
    elif damage == "short_payload":
        images.write_bytes(gzip.compress(gzip.decompress(images.read_bytes())[:-500]))
    elif damage == "count_mismatch":
        write_idx(folder / "train-labels-idx1-ubyte", np.zeros(7, dtype=np.uint8))
    return images


@pytest.mark.parametrize(
    "damage", ["truncated_gzip", "not_gzip", "bad_header", "short_payload", "count_mismatch"]
)
def test_damaged_idx_files_are_named(cli, tmp_path, damage):
    folder = make_mnist_dir(tmp_path / "mnist", n_train=30, n_test=10)
    damaged = damage_mnist(folder, damage)
    code, err = cli("data=mnist", f"data.data_dir={folder}", "data.val_size=5")
    assert_refused(code, err, str(damaged))


def image_folder(root: Path, n: int = 12) -> Path:
    """`n` small random PNG images in `root`."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = rng.integers(0, 255, (12, 12, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"img{i:02d}.png")
    return root


IMAGE_ARGS = ["model=ae", "data=image_folder", "data.image_size=8", "data.batch_size=4"]


def test_a_file_that_is_not_an_image_is_named(cli, tmp_path):
    folder = image_folder(tmp_path / "images")
    bad = folder / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    code, err = cli(*IMAGE_ARGS, f"data.path={folder}", "data.num_workers=0")
    assert_refused(code, err, str(bad), "1 of 13 files", "data.on_bad_image=skip")


def test_an_image_cut_short_is_named_also_from_a_worker(cli, tmp_path):
    """The header opens, the pixels do not: found while decoding, in a DataLoader worker."""
    folder = image_folder(tmp_path / "images")
    buffer = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 7, dtype=np.uint8)).save(buffer, format="PNG")
    for i in range(12):
        (folder / f"img{i:02d}.png").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    code, err = cli(*IMAGE_ARGS, f"data.path={folder}", "data.num_workers=1")
    assert_refused(code, err, "cannot decode image", str(folder / "img"))


def test_unreadable_images_can_be_skipped_with_a_count(cli, tmp_path):
    folder = image_folder(tmp_path / "images")
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.gif").write_text("GIF? no")
    code, err = cli(
        *IMAGE_ARGS,
        f"data.path={folder}",
        "data.num_workers=0",
        "data.on_bad_image=skip",
        "test=false",
    )
    assert code == 0, err[-2000:]
    assert "skipped 2 of 14 files" in (tmp_path / "run" / "train.log").read_text()


def test_empty_image_folder(cli, tmp_path):
    (tmp_path / "nothing").mkdir()
    assert_refused(*cli(*IMAGE_ARGS, f"data.path={tmp_path / 'nothing'}"), "no images")


TEXT_ARGS = ["model=gpt2", "data=text", "model.n_layer=1", "model.n_embd=32", "model.n_head=2"]


@pytest.mark.parametrize("content", [b"", b"  \n\n", "caf\xe9 latin-1".encode("latin-1")])
def test_empty_or_non_utf8_text_is_named(cli, tmp_path, content):
    path = tmp_path / "corpus.txt"
    path.write_bytes(content)
    expected = "not UTF-8" if content.strip() else "is empty"
    assert_refused(*cli(*TEXT_ARGS, f"data.path={path}"), str(path), expected)


def test_text_too_short_for_its_splits(cli, tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("Just a few words here.", encoding="utf-8")
    assert_refused(*cli(*TEXT_ARGS, f"data.path={path}"), "too short", "data.block_size")


def test_pretrained_model_that_cannot_be_loaded(cli, tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("Enough words for a corpus. " * 100, encoding="utf-8")
    missing = tmp_path / "no_such_model"
    code, err = cli(*TEXT_ARGS, f"data.path={path}", f"model.pretrained={missing}")
    assert_refused(code, err, f"model.pretrained={missing}", "model.pretrained=null")


def test_missing_mnist_files_say_how_to_get_them(cli, tmp_path):
    assert_refused(*cli("data=mnist", f"data.data_dir={tmp_path / 'none'}"), "data.download=true")


def test_missing_text_file(cli, tmp_path):
    missing = tmp_path / "nope.txt"
    assert_refused(*cli(*TEXT_ARGS, f"data.path={missing}"), f"data.path={missing}")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("one\t1\ntwo 2\n", "pairs.tsv:2: expected 'source<TAB>target', got 'two 2' (0 tabs)"),
        ("one\t1\ntwo\t2\tdeux\n", "pairs.tsv:2: expected"),
        ("\n\n", "pairs.tsv has no sentence pairs"),
    ],
    ids=["no_tab", "two_tabs", "empty"],
)
def test_malformed_translation_file_names_file_and_line(cli, tmp_path, content, needle):
    path = tmp_path / "pairs.tsv"
    path.write_text(content, encoding="utf-8")
    assert_refused(*cli("model=seq2seq", "data=translation", f"data.path={path}"), needle)


@pytest.mark.parametrize(
    "args, needles",
    [
        (["max_new_tokens=-1"], ["max_new_tokens=-1", "positive integer"]),
        (["max_new_tokens=lots"], ["max_new_tokens=lots", "positive integer"]),
        (["temperature=0", "do_sample=true"], ["temperature=0", "positive number"]),
        (["seed=abc"], ["seed=abc", "an integer"]),
        (["top_p=2"], ["top_p=2", "(0, 1]"]),
        (["num_return_sequences=0"], ["num_return_sequences=0", "positive integer"]),
    ],
    ids=lambda value: "_".join(value) if isinstance(value, list) else None,
)
def test_generate_refuses_bad_text_options_before_loading(tool, tmp_path, args, needles):
    """Checked before any model is loaded: the run directory does not even exist."""
    code, err = tool(generate_main, f"run_dir={tmp_path / 'nowhere'}", "prompt=Hi", *args)
    assert_refused(code, err, *needles)


def test_a_checkpoint_of_strings_is_refused(tool, vae_run, tmp_path):
    fake = tmp_path / "strings.ckpt"
    torch.save({"state_dict": {"net.encoder.0.weight": "not a tensor"}}, fake)
    code, err = tool(evaluate_main, f"run_dir={vae_run}", f"ckpt_path={fake}")
    assert_refused(code, err, f"ckpt_path={fake}", "state_dict of tensors")


@pytest.mark.parametrize(
    "content, needle",
    [
        ("model: [unclosed\n", "config.yaml is not a readable config"),
        ("data: {}\n", "config.yaml has no model config"),
    ],
)
def test_a_damaged_run_config_is_named(tool, vae_run, tmp_path, content, needle):
    run = tmp_path / "run"
    shutil.copytree(vae_run, run)
    (run / "config.yaml").write_text(content)
    assert_refused(*tool(evaluate_main, f"run_dir={run}"), needle)


def test_a_damaged_run_record_is_named(cli, vae_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(vae_run, run)
    (run / "run.json").write_text('{"status": "compl')
    assert_refused(
        *cli(f"run_dir={run}", "ckpt_path=last"), "run.json is not a readable run record"
    )


def test_a_log_dir_that_is_a_file(cli, tmp_path):
    (tmp_path / "afile").write_text("x")
    code, err = cli("paths.log_dir=afile", "hydra.run.dir=afile/run")
    assert_refused(code, err, "afile is a file", "paths.log_dir")


def bomb_png(path: Path, side: int = 30000) -> Path:
    """A PNG of a few bytes whose header declares `side` x `side` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00")
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize("on_bad_image", ["fail", "skip"])
def test_a_decompression_bomb_is_not_decoded(cli, tmp_path, on_bad_image):
    folder = image_folder(tmp_path / "images")
    bomb = bomb_png(folder / "bomb.png")
    assert bomb.stat().st_size < 100
    args = [*IMAGE_ARGS, f"data.path={folder}", "data.num_workers=0", "test=false"]
    code, err = cli(*args, f"data.on_bad_image={on_bad_image}")
    if on_bad_image == "fail":
        assert_refused(code, err, str(bomb))
    else:
        assert code == 0, err[-2000:]
        assert "skipped 1 of 13 files" in (tmp_path / "run" / "train.log").read_text()


@pytest.mark.parametrize("model", ["gpt2", "seq2seq"])
def test_a_data_path_that_is_a_folder(cli, tmp_path, model):
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("hello " * 100)
    data = "text" if model == "gpt2" else "translation"
    code, err = cli(f"model={model}", f"data={data}", f"data.path={tmp_path / 'texts'}")
    assert_refused(code, err, f"data.path={tmp_path / 'texts'} is a folder")


def test_a_text_glob_skips_folders(cli, tmp_path):
    (tmp_path / "a_folder").mkdir()
    code, err = cli("model=gpt2", "data=text", f"data.path={tmp_path}/a*")
    assert_refused(code, err, "no such file")
