"""The benchmark scripts run end to end in their smoke sizes and write the JSON they promise (never timings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(script: str, *args: str, json_path: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "KERAS_BACKEND": "torch"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args, "--json", str(json_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(json_path.read_text())


@pytest.mark.slow
def test_time_to_accuracy_smoke(tmp_path):
    out = run("time_to_accuracy.py", "--epochs", "1", "--limit-train-batches", "5", "--seeds", "1",
              json_path=tmp_path / "tta.json")
    assert {r["path"] for r in out["runs"]} == {"plain", "lightning"}
    for r in out["runs"]:
        assert {"test_acc", "clock_s", "train_s", "time_to_99", "seed"} <= set(r) and len(r["test_acc"]) == 1
    # the same weights, batches and schedule: the same accuracy after the epoch
    assert out["summary"]["max_acc_difference_per_seed"]["1"] == 0


@pytest.mark.slow
def test_throughput_compiled_paths_smoke(tmp_path):
    out = run("throughput.py", "--batches", "3", "--warmup", "2", "--rounds", "1", "--threads", "1",
              "--paths", "plain", "plain_compiled", "lightning", "lightning_compiled", json_path=tmp_path / "t.json")
    (row,) = out["rows"]
    assert set(row["images_per_s"]) == {"plain", "plain_compiled", "lightning", "lightning_compiled"}
    assert row["images_per_s"]["plain"] and row["images_per_s"]["lightning"]  # a compile failure leaves these running


@pytest.mark.slow
def test_keras_batchnorm_smoke(tmp_path):
    out = run("keras_batchnorm.py", "--steps", "2", "--warmup", "1", "--rounds", "1", "--threads", "1",
              "--variants", "default", json_path=tmp_path / "bn.json")
    assert {(r["path"], r["bn"]) for r in out["rows"]} == {(p, bn) for p in ("torch", "keras_fit", "keras_step")
                                                           for bn in (False, True)}
    assert set(out["bn_overhead"]) == {"torch/-", "keras_fit/default", "keras_step/default"}
