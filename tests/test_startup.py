"""Start-up: an image run imports no text or plotting library of genlab's own accord.

Lightning imports torchmetrics, whose metric modules import transformers and matplotlib when
they are installed: those imports are Lightning's, and these tests tell them from genlab's.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("transformers", "matplotlib", "sacrebleu")

# Records, for each of HEAVY, the file whose import statement first asked for it.
PROBE = """
import json, sys, traceback
HEAVY = {heavy!r}
importers = {{}}

class Watch:
    def find_spec(self, name, path=None, target=None):
        if name in HEAVY and name not in importers:
            frames = [
                f.filename for f in traceback.extract_stack()[:-1]
                if "importlib" not in f.filename and not f.filename.startswith("<")
            ]
            importers[name] = frames[-1]
        return None

sys.meta_path.insert(0, Watch())
import genlab
genlab.train({overrides!r})

def origin(value):
    name = value.__name__ if type(value) is type(sys) else getattr(value, "__module__", None)
    return name.split(".")[0] if isinstance(name, str) else None

# What genlab's loaded modules hold of them (module-level imports, even after Lightning's).
held = sorted(
    f"{{module}}.{{key}}"
    for module, loaded in list(sys.modules.items())
    if module.split(".")[0] == "genlab"
    for key, value in vars(loaded).items()
    if origin(value) in HEAVY
)
print(json.dumps({{"importers": importers, "held": held}}))
"""


def test_an_image_run_imports_no_text_or_plotting_library_itself(tmp_path):
    overrides = [
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        f"hydra.run.dir={tmp_path / 'run'}",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    code = PROBE.format(heavy=set(HEAVY), overrides=overrides)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert (tmp_path / "run" / "metrics.json").is_file()
    first_imported_by_genlab = {
        name: path for name, path in found["importers"].items() if "/genlab/" in path
    }
    assert first_imported_by_genlab == {}
    assert found["held"] == []


def test_the_command_line_entry_point_imports_none_of_them():
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import genlab.cli.train"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "genlab.cli.train" in imported
    assert imported.isdisjoint(HEAVY)
