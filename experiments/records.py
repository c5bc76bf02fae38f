"""What the report reads: the parts' output files (JSON, CSV) and the machine it runs on."""

from __future__ import annotations

import csv
import datetime
import importlib
import os
import platform
from pathlib import Path

from core.runs import read_record


def read_json(path: Path) -> dict:
    return read_record(path, "results file")


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    import torch

    versions = {}
    for name in ("torch", "torchvision", "lightning", "torchmetrics", "keras", "sklearn", "skimage", "numpy", "jax", "bm3d"):
        try:
            versions[name] = importlib.import_module(name).__version__
        except (ImportError, AttributeError):
            continue
    gpu = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "keras_backend": os.environ.get("KERAS_BACKEND", "torch"),
        "packages": versions,
    }
