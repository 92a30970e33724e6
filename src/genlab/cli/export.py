"""genlab-export: a GPT-2 run as a Hugging Face directory that plain `transformers` loads.

    genlab-export run_dir=<run> out=<dir> [ckpt_path=best|last|FILE]

Then: `GPT2LMHeadModel.from_pretrained(dir)` and `AutoTokenizer.from_pretrained(dir)`.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from genlab.cli.args import parse_args
from genlab.errors import FileWriteError, GenlabError, user_errors_exit
from genlab.models.abilities import ExportsPretrained
from genlab.run.console import quiet_known_warnings
from genlab.run.loading import load_run
from genlab.utils.atomic import creation_problem


def export_run(run_dir: str | Path, out: str | Path, ckpt_path: str = "best") -> Path:
    """`save_pretrained` of the run's model (weights from `ckpt_path`) and tokenizer into `out`,
    a new or empty folder, written whole: into a temporary folder beside it, then renamed."""
    out = Path(out)
    problem = _out_problem(out)
    if problem:  # before the model is loaded
        raise GenlabError(f"out={out}: {problem}")
    model, _, _ = load_run(run_dir, ckpt_path)
    if not isinstance(model, ExportsPretrained):
        raise GenlabError(f"{run_dir} is a {type(model).__name__} run: only GPT-2 runs export")
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.export_pretrained(tmp)
        os.replace(tmp, out)  # over an empty folder too
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise FileWriteError(f"cannot write {out}: {err.strerror or err}") from err
    return out


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
        if set(args) - {"run_dir", "out", "ckpt_path"} or not {"run_dir", "out"} <= set(args):
            raise GenlabError("usage: genlab-export run_dir=<run> out=<dir> [ckpt_path=best]")
        path = export_run(**args)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
