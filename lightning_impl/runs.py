"""What every writer of a run folder shares, in both frameworks: the folder, its metrics.json, the data-error exit.

Framework-neutral (no Lightning, no Keras), so keras_ref and the drivers above both frameworks use it too.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from lightning_impl.data.datasets import DataIntegrityError, DatasetUnavailableError


def next_version(parent: Path) -> int:
    """Lightning's CSVLogger numbering: one more than the highest version_<n> under ``parent`` (0 if none)."""
    found = [int(m.group(1)) for p in parent.glob("version_*") if (m := re.fullmatch(r"version_(\d+)", p.name))]
    return max(found, default=-1) + 1


def new_run_dir(runs_dir: str | Path, name: str) -> Path:
    """runs/<name>/version_<n>, numbered as Lightning numbers its runs and never reused (mkdir is the lock)."""
    parent = Path(runs_dir) / name
    parent.mkdir(parents=True, exist_ok=True)
    n = next_version(parent)
    while True:
        try:
            (run := parent / f"version_{n}").mkdir()
            return run
        except FileExistsError:
            n += 1


def strict(value):
    """``value`` with NaN and infinities replaced by None, so that the JSON written is strict (RFC 8259)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    return value


def write_json(path: str | Path, value) -> None:
    """Strict JSON, replaced atomically: a reader never sees half a file, an interruption never leaves one."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(strict(value), indent=2, allow_nan=False, default=str) + "\n")
    tmp.replace(path)


class UsageError(ValueError):
    """A request the program cannot carry out as given (a path that is not a run, a value out of range); the
    message names the option or file."""


def fail(message: str, status: int = 2):
    """End the program with one line on stderr: what every entry point does with a bad input."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(status)


@contextlib.contextmanager
def data_errors() -> Iterator[None]:
    """Missing or corrupt data, or a request that cannot be carried out, ends the program with its one-line
    message (status 2), not a traceback."""
    try:
        yield
    except (DatasetUnavailableError, DataIntegrityError, UsageError) as err:
        fail(str(err))
