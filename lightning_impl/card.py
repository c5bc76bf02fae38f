"""Self-contained checkpoints: a "model card" of plain values written into every checkpoint, and loading it back.

The card holds what turns a raw image into a prediction without the dataset on disk: the task, the
dataset's name, class names and image shape, the training split's normalisation statistics (classifiers;
denoisers work on the [0, 1] pixel scale) and the architecture as ``class_path`` / ``init_args``. Only
plain types (str, float, int, bool, list, dict) go in, so ``torch.load(..., weights_only=True)`` reads it.

    checkpoint["model_card"] = {"task": "classifier", "dataset": "mnist", "classes": [...], "input_shape": [1, 28, 28],
                                "mean": [0.1307], "std": [0.3081], "net": {"class_path": ..., "init_args": {...}}, ...}
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

from lightning_impl.checkpoints import CheckpointError, load
from core.runs import UsageError, read_record
from lightning_impl.tasks.classifier import ImageClassifier
from lightning_impl.data.datamodules import ImageDataModule
from lightning_impl.tasks.denoiser import Denoiser
from lightning_impl.data.noise import NoisyDataModule

CARD_KEY = "model_card"
CARD_VERSION = 1
# Architectures are imported by name from a checkpoint: only this package's modules, so that a checkpoint
# cannot name arbitrary code to run.
TRUSTED_PREFIX = "lightning_impl."


def _plain(value: Any) -> Any:
    """Tuples to lists, tensors to lists of floats: what weights_only loading and JSON both accept."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.tolist()
    return value


def class_path(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def make_card(module: L.LightningModule, data: L.LightningDataModule, net: dict | None) -> dict:
    """The card of a module trained on a DataModule. ``net``: the architecture's class_path/init_args as
    configured (None: the module built its default net, whose constructor defaults then describe it)."""
    net = net or {"class_path": class_path(module.net), "init_args": {}}
    card: dict[str, Any] = {"version": CARD_VERSION, "net": _plain(net)}
    if isinstance(module, ImageClassifier) and isinstance(data, ImageDataModule):
        if data.mean is None:
            raise RuntimeError("the DataModule is not set up: its normalisation statistics are unknown")
        card.update(task="classifier", dataset=data.dataset_name, flip_tta=bool(module.hparams.flip_tta),
                    shift_tta=int(module.hparams.get("shift_tta", 0)),
                    mean=_plain(data.mean), std=_plain(data.std))
        spec = data.spec
    elif isinstance(module, Denoiser) and isinstance(data, NoisyDataModule):
        card.update(task="denoiser", dataset=data.hparams.dataset, sigma=_plain(data.sigma), eval_sigma=_plain(data.eval_sigma))
        spec = data.source.spec
    else:
        raise TypeError(f"no model card for {type(module).__name__} trained on {type(data).__name__}")
    card.update(classes=list(spec.classes), input_shape=list(spec.shape))
    return card


class ModelCard(Callback):
    """Writes the model card into every checkpoint the Trainer saves (best, last, manual)."""

    def __init__(self, net: dict | None = None) -> None:
        self.net = net

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict) -> None:
        checkpoint[CARD_KEY] = make_card(pl_module, trainer.datamodule, self.net)


def net_config(cli) -> dict | None:
    """The ``model.net`` section of a LightningCLI's parsed config, as plain dicts (None when unset)."""
    net = cli.config.as_dict().get("model", {}).get("net")
    return {"class_path": net, "init_args": {}} if isinstance(net, str) else net


# ----------------------------------------------------------------------------- loading


def find_checkpoint(path: str | Path) -> Path:
    """A .ckpt file as is; a run folder: the best checkpoint on validation that metrics.json names, else the
    only best-*.ckpt, else last.ckpt."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint or run folder")
    folder = path / "checkpoints" if (path / "checkpoints").is_dir() else path
    metrics = path / "metrics.json"
    if metrics.is_file():
        try:
            named = read_record(metrics, "run record").get("best_checkpoint")
        except UsageError as err:
            raise CheckpointError(str(err)) from None
        for candidate in (Path(named), folder / Path(named).name) if named else ():
            if candidate.is_file() and candidate.suffix == ".ckpt":
                return candidate
    best = sorted(folder.glob("best*.ckpt"))
    if len(best) == 1:
        return best[0]
    if (folder / "last.ckpt").is_file():
        return folder / "last.ckpt"
    if (Path(path) / "model.keras").is_file() or (Path(path) / "recipe.yaml").is_file():
        raise CheckpointError(f"{path}: this is a Keras run: use keras_ref.predict (lightning_impl reads Lightning checkpoints)")
    raise CheckpointError(f"{path}: no checkpoint found (looked for best*.ckpt and last.ckpt in {folder})")


def load_checkpoint(path: str | Path) -> tuple[dict, dict, Path]:
    """(card, state_dict, checkpoint file), read with weights_only=True: tensors and plain values only."""
    file = find_checkpoint(path)
    checkpoint = load(file)  # data only; a torn or planted file is refused by name
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{file}: not a Lightning checkpoint (no state_dict)")
    card = checkpoint.get(CARD_KEY)
    if card is None:
        raise CheckpointError(
            f"{file}: no model card in this checkpoint (saved before checkpoints carried one); "
            f"train again with this version to predict from it"
        )
    return card, checkpoint["state_dict"], file


def build_net(config: dict) -> nn.Module:
    path = config["class_path"]
    if not path.startswith(TRUSTED_PREFIX):
        raise CheckpointError(f"architecture {path!r} is not one of this project's ({TRUSTED_PREFIX}*); refusing to import it")
    module_name, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module_name), name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise CheckpointError(f"architecture {path!r} is not an nn.Module")
    return cls(**config.get("init_args", {}))


def build_module(card: dict, state_dict: dict) -> L.LightningModule:
    """The trained LightningModule, in eval mode on the CPU, from a card and its weights."""
    net = build_net(card["net"])
    if card["task"] == "classifier":
        module: L.LightningModule = ImageClassifier(net, num_classes=len(card["classes"]), flip_tta=card.get("flip_tta", False),
                                                     shift_tta=card.get("shift_tta", 0))
    elif card["task"] == "denoiser":
        module = Denoiser(net)
    else:
        raise CheckpointError(f"unknown task {card['task']!r} in the model card")
    module.load_state_dict(state_dict, strict=True)
    return module.eval()


def load_model(path: str | Path) -> tuple[L.LightningModule, dict, Path]:
    """(module, card, checkpoint file) from a run folder or a .ckpt."""
    card, state_dict, file = load_checkpoint(path)
    return build_module(card, state_dict), card, file


def normalise(card: dict, images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> the model's input: [0, 1] for denoisers; standardised with the card's
    training statistics for classifiers (what ImageDataModule.normalize does with the DataModule's)."""
    x = images.float() / 255.0
    if card["task"] != "classifier":
        return x
    c = x.shape[1]
    return (x - torch.tensor(card["mean"]).view(1, c, 1, 1)) / torch.tensor(card["std"]).view(1, c, 1, 1)
