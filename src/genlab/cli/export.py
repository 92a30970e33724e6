"""genlab-export: a GPT-2 run as a Hugging Face directory that plain `transformers` loads.

    genlab-export run_dir=<run> out=<dir> [ckpt_path=best|last|FILE]

Then: `GPT2LMHeadModel.from_pretrained(dir)` and `AutoTokenizer.from_pretrained(dir)`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from genlab.cli.args import parse_args
from genlab.errors import GenlabError, user_errors_exit
from genlab.models.abilities import ExportsPretrained
from genlab.run.console import quiet_known_warnings
from genlab.run.loading import load_run


def export_run(run_dir: str | Path, out: str | Path, ckpt_path: str = "best") -> Path:
    """`save_pretrained` of the run's model (weights from `ckpt_path`) and tokenizer into `out`."""
    model, _, _ = load_run(run_dir, ckpt_path)
    if not isinstance(model, ExportsPretrained):
        raise GenlabError(f"{run_dir} is a {type(model).__name__} run: only GPT-2 runs export")
    out = Path(out)
    model.export_pretrained(out)
    return out


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
