"""key=value arguments of the small CLIs (genlab-generate, genlab-attention)."""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

PATH_KEYS = frozenset({"run_dir", "out", "ckpt_path"})


def parse_args(argv: list[str], text_keys: frozenset[str] = frozenset()) -> dict[str, Any]:
    """`key=value` pairs typed as YAML (numbers, booleans, lists, `a.b=c` nesting), except the
    values of `text_keys`, kept as the exact text typed: YAML would make `prompt=ROMEO:` the
    mapping {"ROMEO": None} and `text=3` a number. A text value in [brackets] is a list.
    Paths (`PATH_KEYS`) are always text: `out=2024` names a folder, not a number."""
    text_keys = text_keys | PATH_KEYS
    texts, rest = {}, []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key in text_keys and not value.lstrip().startswith("["):
            texts[key] = value
        else:
            rest.append(arg)
    args = OmegaConf.to_container(OmegaConf.from_cli(rest))
    args.update(texts)
    return args
