"""What the notebook's code cells call (practical.ipynb, written by experiments.notebook): run the practical or
reuse its finished parts, summarise a recipe's net in both frameworks, show a figure. Kept apart from the code
that writes the notebook: these run inside the kernel, on top of everything else."""

from __future__ import annotations

import os
from pathlib import Path

from experiments.notebook import project_root


def run_practical(budget: str, runs_dir: str | Path, data_dir: str | Path | None = None,
                  seeds: int | None = None) -> list[dict]:
    """Run every part of the practical that has not finished (experiments.practical.run_all); the parts' records."""
    from core import budgets
    from experiments import practical
    from experiments.numbers import plural

    runs = Path(runs_dir)
    runs = runs if runs.is_absolute() else project_root() / runs
    if data_dir is not None:  # the parts are processes of their own: they find the data through the environment
        os.environ["LIGHTNING_IMPL_DATA"] = str(Path(data_dir).resolve())
    print(f"budget {budget}, {plural(seeds or budgets.budget('practical', budget)['seeds'], 'seed')} of the specified CNN; runs folder: {runs}")
    return practical.run_all(budget, runs, seeds=seeds)


def summarise(recipe: str, input_shape: tuple[int, int, int]) -> None:
    """Build a recipe's net in both frameworks, as the trainers build them, and print both: torch's module tree
    and Keras' summary (the report's architecture table compares them layer by layer)."""
    from experiments.nets import build_pair, recipe_net

    torch_net, keras_net = build_pair(recipe_net(recipe), input_shape)
    params = sum(p.numel() for p in torch_net.parameters())
    print(f"{recipe}: PyTorch ({params:,} parameters)\n{torch_net}\n")
    keras_net.summary()


def show(figure: str | Path) -> None:
    """Show one of the report's figures (a path relative to the notebook's folder)."""
    from IPython.display import Image, display

    path = Path(figure)
    if not path.is_file():
        print(f"{path}: not here (this copy of the notebook was moved away from its report's figures/ folder)")
        return
    display(Image(filename=str(path)))
