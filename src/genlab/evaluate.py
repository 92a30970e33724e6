"""genlab-eval: test a finished run's checkpoint on its own data, from its own saved config.

    genlab-eval run_dir=outputs/vae_digits/2026-11-26_20-00-00 [ckpt_path=best|last|FILE]
    genlab-eval ckpt_path=outputs/.../checkpoints/last.ckpt

Prints the test metrics and writes them to <run_dir>/eval_metrics.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as L

from genlab.cli_args import parse_args
from genlab.errors import GenlabError, user_errors_exit
from genlab.metrics import collect_metrics
from genlab.runs import load_run, resolve_checkpoint, run_dir_of


def evaluate(run_dir: str | Path | None = None, ckpt_path: str | None = None) -> dict[str, float]:
    """Test metrics of a run's checkpoint (best by default); also written to eval_metrics.json."""
    if run_dir is None and ckpt_path in (None, "best", "last"):
        raise GenlabError("give run_dir=<run directory> or ckpt_path=<checkpoint file>")
    checkpoint = ckpt_path or "best"
    if run_dir is None:
        run_dir = run_dir_of(resolve_checkpoint(checkpoint, Path(".")))
    run_dir = Path(run_dir)
    model, datamodule, cfg = load_run(run_dir, checkpoint)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    trainer = L.Trainer(
        accelerator=cfg.trainer.get("accelerator", "auto"),
        devices=1,
        precision=cfg.trainer.get("precision", "32-true"),
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
    )
    trainer.test(model, datamodule=datamodule, verbose=False)
    metrics = collect_metrics(trainer)
    (run_dir / "eval_metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    unknown = set(args) - {"run_dir", "ckpt_path"}
    with user_errors_exit():
        if unknown:
            raise GenlabError(
                f"unknown argument(s) {sorted(unknown)}: use run_dir=... ckpt_path=..."
            )
        metrics = evaluate(args.get("run_dir"), args.get("ckpt_path"))
    for name, value in sorted(metrics.items()):
        print(f"{name:24} {value:.6g}")


if __name__ == "__main__":
    main()
