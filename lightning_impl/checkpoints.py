"""Reading checkpoints as data, never as code: every checkpoint the project opens goes through here.

``torch.load(weights_only=True)`` uses torch's restricted unpickler, which refuses a pickle that would import or
call anything beyond tensors and plain containers, so a planted checkpoint cannot run code. A file that is not a
complete checkpoint (cut short by a kill, say) is reported by name rather than as an unpickling traceback.
Writes go through ``SafeCheckpointIO.save_checkpoint`` too: the checkpoint is written beside its destination,
flushed to disk and renamed over it (``runs.atomic_path``), so a kill or a full disk leaves the previous checkpoint
whole. (Lightning's own save stages the file in the system's temporary folder and moves it: across filesystems
the move is a copy, and a kill during it leaves a torn file where the last good checkpoint was.)
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from core.runs import write_bytes


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read safely: incomplete, not a checkpoint, or holding code."""


def load(path: str | Path, map_location: Any = "cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:  # weights_only refused something that is not plain data
        reason = str(err).splitlines()[0]
        raise CheckpointError(f"{path}: refused, it holds more than weights and plain data ({reason})") from None
    except (EOFError, RuntimeError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointError(f"{path}: not a complete checkpoint (cut short or damaged: {err})") from None


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O, loading only through ``load`` above (resume and test alike)."""

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        return load(path, map_location=map_location if map_location is not None else "cpu")

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        save(checkpoint, path)


def save(checkpoint: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` complete or not at all: the previous file stays whole until the new one is on disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    write_bytes(path, buffer.getbuffer())
