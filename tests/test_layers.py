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
    ("lightning_impl/planted.py", "from experiments import ablation\n"),
    ("parity/planted.py", "from experiments import practical\n"),
])
@pytest.mark.slow
def test_a_planted_import_breaks_a_contract(tmp_path, module, line):
    tree = tmp_path / "tree"
    for part in ("lightning_impl", "keras_ref", "parity", "experiments"):
        shutil.copytree(ROOT / part, tree / part, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree)
    (tree / module).write_text(line)
    result = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, '.'); "
                             "from importlinter.cli import lint_imports_command; lint_imports_command()", "--no-cache"],
                            cwd=tree, capture_output=True, text=True)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout + result.stderr
