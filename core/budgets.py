"""The budgets of the commands that have one (experiments.practical, experiments.ablation, experiments.denoising):
one vocabulary, ``smoke`` | ``standard`` | ``full``, declared in configs/experiments/budgets.yaml, where each command reads its
own section. A name means the same size in every command, so the practical runs each of its parts at its own
budget's name."""

from __future__ import annotations

import copy
from functools import lru_cache

from core import configs

NAMES = ("smoke", "standard", "full")
FILE = "experiments/budgets.yaml"


def budget(command: str, name: str) -> dict:
    """The section of ``command`` (practical | ablation | denoising) of budget ``name``, a fresh copy."""
    if name not in NAMES:
        raise ValueError(f"unknown budget {name!r}; choose one of {', '.join(NAMES)}")
    table = _table()
    if set(table) != set(NAMES):
        raise ValueError(f"configs/{FILE} must declare exactly the budgets {', '.join(NAMES)}, not {sorted(table)}")
    if command not in table[name]:
        raise ValueError(f"configs/{FILE}: budget {name!r} has no section {command!r}")
    return copy.deepcopy(table[name][command])


def ladder(name: str, dataset: str) -> dict:
    """The ablation section of budget ``name`` for ``dataset``'s ladder: the section's epochs, train_fraction and
    seeds, with what its ``datasets: {<dataset>: {...}}`` entry overrides (a ladder of cheap steps can afford its
    recipes' own epochs where another's must be cut)."""
    from core.datasets import SPECS

    spec = budget("ablation", name)
    own = spec.pop("datasets", None) or {}
    unknown = set(own) - set(SPECS)
    if unknown:
        raise ValueError(f"configs/{FILE}: budget {name!r}, ablation: no dataset {sorted(unknown)[0]!r} "
                         f"(known: {', '.join(SPECS)})")
    return {**spec, **(own.get(dataset) or {})}


@lru_cache(maxsize=1)
def _table() -> dict:
    """The file, read once per process (the progress line asks for its estimates every minute)."""
    return configs.load(FILE)
