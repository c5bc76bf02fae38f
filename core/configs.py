"""The YAML recipes in configs/: where they are, and how an overlay changes one.

The recipes are the one place both frameworks read their defaults from. They ship inside the installed
package (``core/packaged_configs`` is a link to the repository's ``configs/`` and setuptools copies its files
as package data), so ``find`` works the same from a checkout, an editable install or a wheel.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import yaml


def folder() -> Path:
    return Path(str(resources.files("core") / "packaged_configs"))


def find(name: str | Path) -> Path:
    """A recipe by path (as given, if it exists) or by its name inside configs/ (``mnist_improved.yaml``)."""
    path = Path(name)
    if path.is_file():
        return path
    packaged = folder() / (Path(*path.parts[1:]) if path.parts[:1] == ("configs",) else path)
    if packaged.is_file():
        return packaged
    raise FileNotFoundError(f"no recipe {str(name)!r} (neither a file nor one of {folder()})")


def load(name: str | Path) -> dict:
    path = find(name)
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{name}: a recipe is a YAML mapping")
    return config


def merge(base, overlay):
    """Deep-merge ``overlay`` into ``base``, as LightningCLI merges configs: a new class_path replaces the whole
    sub-config (its init_args belong to the old class)."""
    if not (isinstance(base, dict) and isinstance(overlay, dict)):
        return copy.deepcopy(overlay)
    if "class_path" in overlay and overlay["class_path"] != base.get("class_path"):
        return copy.deepcopy(overlay)
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        out[key] = merge(base[key], value) if key in base else copy.deepcopy(value)
    return out


def recipe_task(config: dict) -> str | None:
    """"denoiser" or "classifier" by what a recipe sets (a noise level or a loss name is a denoiser's; a data
    class a classifier's), None when it says neither (an overlay of trainer flags)."""
    model, data = config.get("model") or {}, config.get("data") or {}
    if isinstance(data, dict) and ("sigma" in data or "dataset" in data) or isinstance(model, dict) and "loss" in model:
        return "denoiser"
    if isinstance(data, (str, dict)) and (isinstance(data, str) or "class_path" in data):
        return "classifier"
    return None
