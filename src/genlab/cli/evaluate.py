"""genlab-eval: test a finished run's checkpoint on its own data, from its own saved config.

    genlab-eval run_dir=outputs/vae_digits/2026-11-26_20-00-00 [ckpt_path=best|last|FILE]
    genlab-eval ckpt_path=outputs/.../checkpoints/last.ckpt

Prints the checkpoint it tested and the test metrics, and writes both to
<run_dir>/eval_metrics.json ("checkpoint": its path).
"""

from __future__ import annotations

import sys

from genlab.cli.args import parse_args
from genlab.errors import GenlabError, user_errors_exit
from genlab.run.console import quiet_known_warnings
from genlab.run.evaluate import evaluate_run


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    unknown = set(args) - {"run_dir", "ckpt_path"}
    quiet_known_warnings()
    with user_errors_exit():
        if unknown:
            raise GenlabError(
                f"unknown argument(s) {sorted(unknown)}: use run_dir=... ckpt_path=..."
            )
        metrics, checkpoint = evaluate_run(args.get("run_dir"), args.get("ckpt_path"))
    print(f"tested {checkpoint}")
    for name, value in sorted(metrics.items()):
        print(f"{name:24} {value:.6g}")


if __name__ == "__main__":
    main()
