"""genlab-attention: draw a model's attention weights over one text, a PNG per kind of attention.

    genlab-attention run_dir=<run> [text="..."] [target="..."] [out=attention.png] [ckpt_path=best]
    genlab-attention model.pretrained=gpt2 text="The king is dead"
    genlab-attention model.pretrained=Helsinki-NLP/opus-mt-en-de text="I like tea." [target=...]

Each PNG is a layer x head grid of heatmaps with token labels on both axes. GPT-2 gives
`<out>_self.png`; encoder-decoder models give `<out>_encoder.png`, `<out>_decoder.png` and
`<out>_cross.png` (target tokens over source tokens, teacher-forced on `target`, by default the
model's own greedy translation). Without `text=`, the first test example of the run's data is used
(with its reference translation). `out` defaults to `<run_dir>/attention.png`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from genlab.callbacks.figures import plot_attention
from genlab.cli.args import parse_args
from genlab.data.abilities import HasExamples
from genlab.errors import GenlabError, user_errors_exit
from genlab.models.abilities import DrawsAttention
from genlab.run.console import quiet_known_warnings
from genlab.run.loading import load_pretrained, load_run
from genlab.run.run_dir import RunDir
from genlab.utils.atomic import replace_atomically

_ARGS = {"run_dir", "model", "text", "target", "out", "ckpt_path"}


def write_attention(
    run_dir: str | Path | None = None,
    pretrained: str | None = None,
    text: str | None = None,
    target: str | None = None,
    out: str | Path | None = None,
    ckpt_path: str = "best",
) -> list[Path]:
    """Save the attention grids of one example as PNGs; return their paths."""
    if run_dir is not None:
        model, datamodule, _ = load_run(run_dir, ckpt_path)
    elif pretrained:
        model, datamodule = load_pretrained(pretrained), None
    else:
        raise GenlabError("give run_dir=<a run> or model.pretrained=<hub name or directory>")
    if not isinstance(model, DrawsAttention):
        raise GenlabError(
            f"{type(model).__name__} has no attention: genlab-attention needs a GPT-2 or "
            f"seq2seq run"
        )
    if text is None:
        if not isinstance(datamodule, HasExamples):
            raise GenlabError("give text=... (there is no run data to take an example from)")
        example = datamodule.example("test")
    else:
        example = {"text": text} if target is None else {"text": text, "target": target}
    out = Path(out) if out else RunDir(run_dir or ".").path / RunDir.ATTENTION
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for attention in model.attention_maps(**example):
        path = out.with_name(f"{out.stem}_{attention.name}{out.suffix or '.png'}")
        figure, kind = plot_attention(attention), path.suffix[1:]
        replace_atomically(path, lambda tmp, f=figure, k=kind: f.savefig(tmp, format=k, dpi=120))
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv, frozenset({"text", "target"}))
    quiet_known_warnings()
    with user_errors_exit():
        unknown = set(args) - _ARGS
        if unknown:
            raise GenlabError(
                f"unknown argument(s) {sorted(unknown)}; usage: genlab-attention run_dir=<run> "
                f"| model.pretrained=<name> [text=...] [target=...] [out=attention.png] "
                f"[ckpt_path=best]"
            )
        pretrained = (args.pop("model", None) or {}).get("pretrained")
        paths = write_attention(pretrained=pretrained, **args)
    for path in paths:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
