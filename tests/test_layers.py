"""The layers run one way: the import-linter contracts of pyproject.toml hold."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def lint(cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    return subprocess.run([exe, "--no-cache"], cwd=cwd, capture_output=True, text=True)


def test_import_contracts_are_kept():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize("module,line", [
    ("lightning_impl/data/planted.py", "import keras\n"),
    ("keras_ref/planted.py", "from lightning_impl.train import main\n"),
    ("keras_ref/planted.py", "from lightning_impl.models import SpecifiedCNN\n"),  # not only the trainers: all of it
    ("keras_ref/planted.py", "import lightning\n"),
    ("core/planted.py", "import lightning\n"),
    ("core/planted.py", "from lightning_impl.data import datamodules\n"),
    ("lightning_impl/planted.py", "from experiments import ablation\n"),
    ("parity/planted.py", "from experiments import practical\n"),
])
@pytest.mark.slow
def test_a_planted_import_breaks_a_contract(tmp_path, module, line):
    tree = tmp_path / "tree"
    for part in ("core", "lightning_impl", "keras_ref", "parity", "experiments"):
        shutil.copytree(ROOT / part, tree / part, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree)
    (tree / module).write_text(line)
    result = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, '.'); "
                             "from importlinter.cli import lint_imports_command; lint_imports_command()", "--no-cache"],
                            cwd=tree, capture_output=True, text=True)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout + result.stderr


KERAS_ENTRY_POINTS = ["keras_ref.train", "keras_ref.train_denoiser", "keras_ref.predict", "keras_ref.recipes",
                      "keras_ref.fit", "keras_ref.models"]


@pytest.mark.slow
def test_keras_entry_points_load_neither_lightning_nor_lightning_impl():
    """What the contract says statically, checked at run time: importing every Keras entry point loads no module
    of Lightning and none of lightning_impl (the core is all the Keras side stands on)."""
    code = ("import sys\n"
            f"for m in {KERAS_ENTRY_POINTS!r}: __import__(m)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning', 'lightning_impl'))\n"
            "print(bad)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout
