"""pyproject.toml lists every subpackage, so a wheel ships all code and configs."""

from __future__ import annotations

from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed():
    listed = set(
        tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(p.parent.relative_to(REPO / "src").parts)
        for p in (REPO / "src").rglob("__init__.py")
    }
    # Config groups, nested ones too (conf/hydra/launcher -> genlab.conf.hydra.launcher).
    groups = {
        ".".join(["genlab.conf", *p.parent.relative_to(REPO / "conf").parts])
        for p in (REPO / "conf").rglob("*.yaml")
        if p.parent != REPO / "conf"
    }
    # hydra_plugins: the namespace package (no __init__.py) Hydra takes launchers from.
    assert found | {"genlab.conf", "hydra_plugins"} | groups == listed
