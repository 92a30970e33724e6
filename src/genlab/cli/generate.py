"""genlab-generate: samples from a finished run, or from a pretrained language model.

Images (VAE, GAN, DCGAN runs): a seeded grid.

    genlab-generate run_dir=<run> [n=64] [out=samples.png] [seed=0] [ckpt_path=best] [nrow=8]

Text (GPT-2 runs, or any GPT-2 on the hub or on disk): the continuation of each prompt; for a
seq2seq run, the greedy translation of each prompt.

    genlab-generate run_dir=<run> prompt="ROMEO:" [max_new_tokens=50] [do_sample=true]
                    [temperature=0.8] [top_k=50] [top_p=0.95] [repetition_penalty=1.1]
                    [num_return_sequences=1] [seed=0] [full_text=false]
    genlab-generate model.pretrained=gpt2 prompt='["Hello,","The sky"]'
"""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import torch

from genlab.cli.args import parse_args
from genlab.config.rules import (
    BOOLEAN,
    INTEGER,
    NON_NEGATIVE_INT,
    POSITIVE_INT,
    POSITIVE_NUMBER,
    Rule,
    is_int,
    show,
)
from genlab.errors import GenlabError, user_errors_exit
from genlab.models.abilities import GeneratesText, SamplesImages, Translates
from genlab.run.console import quiet_known_warnings
from genlab.run.loading import load_run
from genlab.run.run_dir import RunDir
from genlab.utils.atomic import creation_problem, replace_atomically
from genlab.utils.pixels import to_unit_range

# A grid holds at most this many images (64 x 64): the samples are made in memory at once.
MAX_GRID = 4096
GRID_SIZE = Rule(f"a positive integer up to {MAX_GRID}", lambda v: is_int(v) and 0 < v <= MAX_GRID)
# The options of text generation, checked before a model is loaded.
TEXT_OPTIONS = {
    "max_new_tokens": POSITIVE_INT,
    "num_return_sequences": POSITIVE_INT,
    "seed": INTEGER,
    "temperature": POSITIVE_NUMBER,
    "top_k": NON_NEGATIVE_INT,
    "top_p": Rule("a number in (0, 1]", lambda v: POSITIVE_NUMBER.accepts(v) and v <= 1),
    "repetition_penalty": POSITIVE_NUMBER,
    "do_sample": BOOLEAN,
    "full_text": BOOLEAN,
    # Translation: refuse (rather than warn of) words the model never saw.
    "strict": BOOLEAN,
}

_IMAGE_ARGS = {"run_dir", "n", "out", "seed", "ckpt_path", "nrow"}
_TEXT_ARGS = {"run_dir", "model", "prompt", "ckpt_path", *TEXT_OPTIONS}


def generate_grid(
    run_dir: str | Path,
    n: int = 64,
    out: str | Path | None = None,
    seed: int = 0,
    ckpt_path: str = "best",
    nrow: int = 8,
) -> Path:
    """Sample `n` images with a seeded generator and save them as a grid PNG; return its path."""
    from PIL import Image
    from torchvision.utils import save_image

    _check_grid_args(n, nrow, seed, out)
    model, _, _ = load_run(run_dir, ckpt_path)
    if not isinstance(model, SamplesImages):
        raise GenlabError(
            f"{type(model).__name__} cannot sample images: genlab-generate needs a VAE or GAN run "
            f"(or prompt=... for a language model)"
        )
    path = Path(out) if out else RunDir(run_dir).path / RunDir.SAMPLES
    problem = creation_problem(path.parent)
    if problem:
        raise GenlabError(f"cannot write {path}: {problem}")
    samples = model.sample(n, generator=torch.Generator().manual_seed(seed))
    grid = to_unit_range(samples, model.value_range).clamp(0, 1)
    # Written whole: to a temporary file (named without the extension PIL goes by) first.
    image_format = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    save = partial(save_image, grid, nrow=nrow, pad_value=1.0, format=image_format)
    replace_atomically(path, lambda tmp: save(tmp))
    return path


def _check_grid_args(n: Any, nrow: Any, seed: Any, out: str | Path | None) -> None:
    """Refuse bad arguments before a model is loaded: one line each, as genlab-train does."""
    values = {"n": (n, GRID_SIZE), "nrow": (nrow, POSITIVE_INT), "seed": (seed, INTEGER)}
    errors = _argument_errors(values)
    if out is not None:
        errors += _out_errors(Path(out))
    if errors:
        raise GenlabError("\n".join(errors))


def _out_errors(out: Path) -> list[str]:
    """The grid is saved by PIL, which picks the format from the file's extension."""
    if out.is_dir():
        return [f"out={out} is a folder: give a file name, e.g. out={out / 'samples.png'}"]
    from PIL import Image

    writable = {e for e, f in Image.registered_extensions().items() if f in Image.SAVE}
    if out.suffix.lower() in writable:
        return []
    problem = f"{out.suffix} is not an image format PIL writes" if out.suffix else "no extension"
    return [f"out={out}: {problem}; end the file name in .png (or .jpg, .bmp, ...)"]


def _argument_errors(values: dict[str, tuple[Any, Rule]]) -> list[str]:
    return [
        f"{name}={show(value)}: must be {rule.allowed}"
        for name, (value, rule) in values.items()
        if not rule.accepts(value)
    ]


def generate_text(
    prompt: str | list[str],
    run_dir: str | Path | None = None,
    pretrained: str | None = None,
    ckpt_path: str = "best",
    seed: int = 0,
    full_text: bool = False,
    max_new_tokens: int = 50,
    strict: bool = False,
    **generation: Any,
) -> list[str]:
    """Continuations of the prompt(s): `num_return_sequences` per prompt, prompt by prompt."""
    prompts = [prompt] if isinstance(prompt, str) else list(prompt)
    errors = []
    if not prompts or not all(isinstance(p, str) and p for p in prompts):
        errors.append('prompt=...: give one non-empty prompt, or a list: prompt=\'["a","b"]\'')
    options = {"seed": seed, "full_text": full_text, "max_new_tokens": max_new_tokens}
    options["strict"] = strict
    options.update(generation)
    errors += _argument_errors(
        {k: (v, TEXT_OPTIONS[k]) for k, v in options.items() if k in TEXT_OPTIONS}
    )
    if errors:  # before a model is loaded
        raise GenlabError("\n".join(errors))
    if run_dir is not None:
        model, _, _ = load_run(run_dir, ckpt_path)
        if isinstance(model, Translates):
            return model.translate(prompts, strict)  # a seq2seq run: greedy translations
        if not isinstance(model, GeneratesText):
            raise GenlabError(
                f"{run_dir} is a {type(model).__name__} run: prompt= needs a GPT-2 or seq2seq run"
            )
    elif pretrained:
        from genlab.models.gpt2 import GPT2

        model = GPT2(pretrained=pretrained).eval()
    else:
        raise GenlabError("give run_dir=<a GPT-2 run> or model.pretrained=<hub name or directory>")
    if torch.cuda.is_available():
        model = model.cuda()
    return model.generate_text(
        prompts, max_new_tokens=max_new_tokens, seed=seed, full_text=full_text, **generation
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv, frozenset({"prompt"}))
    quiet_known_warnings()
    with user_errors_exit():
        if "prompt" in args:
            unknown = set(args) - _TEXT_ARGS
            if unknown:
                raise GenlabError(f"unknown argument(s) for text: {sorted(unknown)}")
            pretrained = (args.pop("model", None) or {}).get("pretrained")
            texts = generate_text(pretrained=pretrained, **args)
            for text in texts:
                print(text if len(texts) == 1 else f"--- \n{text}")
            return
        unknown = set(args) - _IMAGE_ARGS
        if unknown or "run_dir" not in args:
            raise GenlabError(
                "usage: genlab-generate run_dir=<run> [n=64] [out=FILE.png] [seed=0] "
                "[ckpt_path=best] [nrow=8], or prompt=... for text"
                + (f"; unknown: {sorted(unknown)}" if unknown else "")
            )
        path = generate_grid(**args)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
