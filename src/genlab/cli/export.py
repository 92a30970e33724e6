"""genlab-export: a finished run as files that load without genlab's training code.

    genlab-export run_dir=<run> out=<dir> [ckpt_path=best|last|FILE] [format=safetensors|onnx]

GPT-2 runs: a Hugging Face directory; then `GPT2LMHeadModel.from_pretrained(dir)` and
`AutoTokenizer.from_pretrained(dir)`.

GAN, DCGAN and conv_vae runs: the network that samples (a GAN's generator, its weight average
with `ema_decay`; a VAE's decoder) as `model.safetensors` (its state dict) and `config.json` (its
class, constructor arguments, `latent_dim`, `output_shape`, `value_range`): plain PyTorch rebuilds
it and maps noise z ~ N(0, I) of shape (n, latent_dim) to images. `format=onnx` also writes
`model.onnx` (input `z`, output `images`, any batch size) for onnxruntime.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import os
import shutil
import sys
from functools import partial
from pathlib import Path

import torch

from genlab.cli.args import parse_args
from genlab.errors import FileWriteError, GenlabError, user_errors_exit
from genlab.models.abilities import ExportsGenerator, ExportsPretrained
from genlab.run.console import quiet_known_warnings
from genlab.run.loading import load_run
from genlab.utils.atomic import creation_problem

FORMATS = ("safetensors", "onnx")
# What torch.onnx.export needs beside torch (its exporter writes the graph with onnxscript).
ONNX_PACKAGES = ("onnx", "onnxscript")
USAGE = "usage: genlab-export run_dir=<run> out=<dir> [ckpt_path=best] [format=safetensors|onnx]"


def export_run(
    run_dir: str | Path, out: str | Path, ckpt_path: str = "best", format: str = "safetensors"
) -> Path:
    """Export the run's model (weights from `ckpt_path`) into `out`, a new or empty folder,
    written whole: into a temporary folder beside it, then renamed."""
    out = Path(out)
    problem = _out_problem(out)
    if problem:  # before the model is loaded
        raise GenlabError(f"out={out}: {problem}")
    _check_format(format)
    model, _, _ = load_run(run_dir, ckpt_path)
    if isinstance(model, ExportsPretrained):
        if format != "safetensors":
            raise GenlabError(
                f"format={format}: a GPT-2 run exports as a Hugging Face directory; "
                f"leave format out"
            )
        write = model.export_pretrained
    elif isinstance(model, ExportsGenerator):
        write = partial(write_generator, model, onnx=format == "onnx")
    else:
        raise GenlabError(
            f"{run_dir} is a {type(model).__name__} run: genlab-export takes GAN, DCGAN, "
            f"conv_vae and GPT-2 runs"
        )
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write(tmp)
        os.replace(tmp, out)  # over an empty folder too
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise FileWriteError(f"cannot write {out}: {err.strerror or err}") from err
    return out


def write_generator(model: ExportsGenerator, folder: Path, onnx: bool = False) -> None:
    """`model.safetensors` + `config.json` (+ `model.onnx`) of the model's sampling network."""
    from safetensors.torch import save

    network, args = model.exported_generator()
    network = copy.deepcopy(network).cpu().eval()
    network_class = type(network)
    config = {
        "class": f"{network_class.__module__}.{network_class.__qualname__}",
        "args": args,
        "latent_dim": model.latent_dim,
        "output_shape": list(model.input_shape),
        "value_range": list(model.value_range),
        "noise": "z ~ N(0, I): float32 of shape (n, latent_dim)",
        "genlab_model": f"{type(model).__module__}.{type(model).__qualname__}",
    }
    folder.mkdir(parents=True)
    weights = {name: t.detach().contiguous() for name, t in network.state_dict().items()}
    # Serialized, then written as any file is (save_file makes it readable by its owner only).
    (folder / "model.safetensors").write_bytes(save(weights, metadata={"format": "pt"}))
    if onnx:
        _write_onnx(network, model.latent_dim, folder / "model.onnx")
        config["onnx"] = {"file": "model.onnx", "input": "z", "output": "images"}
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def _write_onnx(network: torch.nn.Module, latent_dim: int, path: Path) -> None:
    """The network as an ONNX graph with a free batch size (traced at batch 2: torch.export
    specializes sizes 0 and 1). The graph optimizers' progress notes are kept off the console."""
    optimizer_loggers = [logging.getLogger(name) for name in ("onnxscript", "onnx_ir")]
    levels = [logger.level for logger in optimizer_loggers]
    for logger in optimizer_loggers:
        logger.setLevel(logging.WARNING)
    try:
        torch.onnx.export(
            network,
            (torch.zeros(2, latent_dim),),
            path,
            input_names=["z"],
            output_names=["images"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            external_data=False,
            dynamo=True,
            verbose=False,
        )
    finally:
        for logger, level in zip(optimizer_loggers, levels, strict=True):
            logger.setLevel(level)


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise GenlabError(f"format={format}: must be safetensors or onnx")
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    if format == "onnx" and missing:
        raise GenlabError(
            f"format=onnx needs the {' and '.join(missing)} package(s), which are not installed: "
            f"pip install 'genlab[export]'"
        )


def _out_problem(out: Path) -> str | None:
    if out.is_file():
        return "is a file: give a folder for the export (a new or an empty one)"
    if out.is_dir() and any(out.iterdir()):
        return "is a folder that is not empty: give a new or an empty folder for the export"
    problem = creation_problem(out)
    return f"cannot be written ({problem})" if problem else None


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    quiet_known_warnings()
    with user_errors_exit():
        allowed = {"run_dir", "out", "ckpt_path", "format"}
        if set(args) - allowed or not {"run_dir", "out"} <= set(args):
            raise GenlabError(USAGE)
        path = export_run(**args)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
