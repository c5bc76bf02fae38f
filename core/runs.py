"""What every writer of a run folder shares, in both frameworks: the folder, atomic writes, its metrics.json, the
data-error exit.

Framework-neutral (no Lightning, no Keras), so keras_ref and the drivers above both frameworks use it too.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from core.datasets import DataIntegrityError, DatasetUnavailableError


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


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; when the block ends without error the file is flushed to disk
    and renamed over ``path`` (same folder, so the same filesystem: the rename is atomic), else removed. A reader,
    a kill or a full disk sees the previous complete file or the new complete one, never a part of either.
    ``suffix`` ends the temporary name (Keras wants ``.weights.h5``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())  # mkstemp's 0600 is not ours
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # the rename itself on disk (not every filesystem lets a folder be synced)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | Path, data: bytes) -> None:
    """``data`` into ``path``, complete or not at all (`atomic_path`)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode())


def write_json(path: str | Path, value) -> None:
    """Strict JSON, replaced atomically: a reader never sees half a file, an interruption never leaves one."""
    write_text(path, json.dumps(strict(value), indent=2, allow_nan=False, default=str) + "\n")


def read_record(path: str | Path, what: str = "record") -> dict:
    """A JSON file the project wrote (a record, metrics.json, ladder.json, results.json, a model card), or a
    `UsageError` naming it when it is damaged or not an object."""
    path = Path(path)
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise UsageError(f"{path}: this {what} cannot be read ({type(err).__name__}: {err}); delete it to redo "
                         "what wrote it") from None
    if not isinstance(value, dict):
        raise UsageError(f"{path}: this {what} is not a JSON object; delete it to redo what wrote it")
    return value


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
    except OSError as err:
        if err.errno not in _WRITE_ERRORS:
            raise
        where = f"{err.filename}: " if err.filename else ""
        fail(f"{where}{err.strerror or err}; the files written before are complete (a file being written when this "
             "happened was left as it was, never torn)", status=1)


# What the disk or the file system refuses (full, read-only, not allowed, a file where a folder should be): one
# line that names the path, not a traceback.
_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR, errno.EISDIR,
                 errno.ENOENT}  # ENOENT: an output path whose folder does not exist
