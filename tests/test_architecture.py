"""The layout holds: layers import downwards only, no import cycles, model abilities are asked
for through their protocols, and no model is recognised by the text of its class path."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from genlab.models import abilities
from genlab.models.base import GenlabModule

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "genlab"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(pythonpath)} if pythonpath else None
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True
    )


def test_the_import_contracts_are_kept():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    "module, upward_import, contract",
    [
        ("nn/mlp.py", "import genlab.run.training", "layers"),
        ("models/vae.py", "from genlab.data.digits import DigitsDataModule", "layers"),
        ("nn/vae.py", "from genlab.errors import GenlabError", "networks are plain torch"),
        ("run/run_dir.py", "import genlab.run.training", "no import cycles"),
    ],
)
def test_an_import_against_the_layout_breaks_a_contract(tmp_path, module, upward_import, contract):
    """The same check on a copy of the package with one import added where it does not belong."""
    copy = tmp_path / "src"
    shutil.copytree(SRC, copy / "genlab", ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / "genlab" / module
    path.write_text(path.read_text() + f"\n{upward_import}  # against the layout\n")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    result = lint_imports(tmp_path, pythonpath=copy)
    assert result.returncode != 0, result.stdout[-3000:]
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(line.startswith(contract) for line in broken), result.stdout[-3000:]


def _ability_names() -> set[str]:
    """Every member a protocol of `genlab.models.abilities` declares, and what every
    GenlabModule declares for callbacks and the run code to read."""
    names = set()
    for value in vars(abilities).values():
        if isinstance(value, type) and getattr(value, "_is_protocol", False):
            names |= {n for n in vars(value) if not n.startswith("_")}
            names |= set(getattr(value, "__annotations__", {}))
    names |= {"checkpoint_monitor", "checkpoint_mode", "divergence_hint"}
    names |= {"ddp_find_unused_parameters", "value_range", "context_length"}
    assert {"sample", "reconstruct", "translate", "attention_maps", "value_range"} <= names
    return names


def _sources() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text())) for path in sorted(SRC.rglob("*.py"))]


def test_model_abilities_are_not_probed_with_hasattr():
    names = _ability_names()
    probes = []
    for path, tree in _sources():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id not in ("hasattr", "getattr") or len(node.args) < 2:
                continue
            name = node.args[1]
            if isinstance(name, ast.Constant) and name.value in names:
                probes.append(f"{path.relative_to(SRC)}:{node.lineno} {node.func.id} {name.value}")
    assert probes == []


def test_no_model_is_recognised_by_its_class_path():
    strings = [
        f"{path.relative_to(SRC)}:{node.lineno} {node.value}"
        for path, tree in _sources()
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value.startswith("genlab.models.")
    ]
    assert strings == []


def test_protocols_describe_the_models():
    """The abilities are what the models have: a protocol that no model satisfies would be a
    check that can never pass."""
    from genlab.models.ae import Autoencoder
    from genlab.models.dcgan import DCGAN
    from genlab.models.vae import VAE

    vae, ae, gan = VAE((1, 8, 8)), Autoencoder((1, 8, 8)), DCGAN((1, 8, 8), generator_width=4)
    assert isinstance(vae, abilities.SamplesImages) and isinstance(vae, abilities.Reconstructs)
    assert isinstance(vae, abilities.DecodesLatents) and isinstance(vae, abilities.ImageModel)
    assert isinstance(ae, abilities.Reconstructs) and not isinstance(ae, abilities.SamplesImages)
    assert isinstance(gan, abilities.SamplesImages) and not isinstance(gan, abilities.Reconstructs)
    assert not isinstance(gan, abilities.GeneratesText)
    assert all(isinstance(m, GenlabModule) for m in (vae, ae, gan))
    assert gan.value_range == (-1.0, 1.0) and vae.value_range == (0.0, 1.0)
