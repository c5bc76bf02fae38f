"""Every file the project writes is complete or absent: a failure (full disk, kill) at any byte of a write leaves
the previous file whole; a killed checkpoint save never leaves a torn or empty checkpoint; a full disk ends a run
in one line."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from core import runs
from lightning_impl import checkpoints

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("offset", [0, 1, 7, 500, 999])
def test_a_write_failing_at_any_byte_leaves_the_previous_file_whole(tmp_path, offset):
    path = tmp_path / "record.json"
    runs.write_json(path, {"before": 1})
    before = path.read_bytes()
    new = b"x" * 1000
    with pytest.raises(OSError, match="No space"):
        with runs.atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                f.write(new[:offset])
                raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]  # no temporary file left behind
    runs.write_bytes(path, new)
    assert path.read_bytes() == new


def test_a_written_file_gets_the_usual_permissions(tmp_path):
    """Not mkstemp's 0600: what open() would have given (the umask's), or the replaced file's own mode."""
    mask = os.umask(0o022)
    try:
        runs.write_text(tmp_path / "new.json", "{}")
        assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o644
        (tmp_path / "new.json").chmod(0o600)
        runs.write_text(tmp_path / "new.json", "[]")
        assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(mask)


def test_the_temporary_file_is_beside_its_destination(tmp_path, monkeypatch):
    """Same folder, so the same filesystem: the rename is atomic whatever TMPDIR is (a move across filesystems is
    a copy, which a kill can cut)."""
    monkeypatch.setenv("TMPDIR", "/dev/shm" if Path("/dev/shm").is_dir() else str(tmp_path))
    seen = []
    with runs.atomic_path(tmp_path / "sub.ckpt") as tmp:
        seen.append(tmp.parent)
        tmp.write_bytes(b"1")
    assert seen == [tmp_path]


SAVER = textwrap.dedent("""
    import sys, torch
    from lightning_impl.checkpoints import SafeCheckpointIO
    io, path, i = SafeCheckpointIO(), sys.argv[1], 0
    print("ready", flush=True)
    while True:
        i += 1
        io.save_checkpoint({"i": i, "w": torch.full((4_000_000,), float(i))}, path)
""")


@pytest.mark.slow
def test_a_checkpoint_save_killed_at_any_moment_leaves_a_complete_checkpoint(tmp_path):
    """SIGKILL at 8 moments spread over the saves (16 MB each; the temporary folder on another filesystem when
    /dev/shm exists): every time, last.ckpt is absent or a complete checkpoint, never torn or empty."""
    path = tmp_path / "checkpoints" / "last.ckpt"
    env = {**os.environ, "TMPDIR": "/dev/shm" if Path("/dev/shm").is_dir() else str(tmp_path)}
    complete = 0
    for k in range(8):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(path)], stdout=subprocess.PIPE, text=True,
                                env=env, cwd=ROOT)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.05 + 0.14 * k)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if path.exists():
            checkpoint = checkpoints.load(path)  # a torn file would be refused here
            assert torch.equal(checkpoint["w"], torch.full((4_000_000,), float(checkpoint["i"])))
            complete += 1
    assert complete >= 4  # most kills came after the first save finished: the test saw real replacements


def test_a_full_disk_ends_a_run_in_one_line(tmp_path, monkeypatch, capsys):
    from lightning_impl.train import main

    def full(path, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(checkpoints, "write_bytes", full)
    with pytest.raises(SystemExit) as exit:
        main(["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
              "--trainer.enable_progress_bar", "false", "--trainer.logger.init_args.save_dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert exit.value.code == 1 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error:") and "No space left on device" in line and ".ckpt" in line, line
    assert not list(tmp_path.glob("*/version_*/metrics.json"))
