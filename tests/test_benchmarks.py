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


@pytest.mark.slow
def test_recipes_smoke(tmp_path):
    """Each framework's run is a process of its entry point; a re-measured recipe replaces its earlier runs."""
    path = tmp_path / "recipes.json"
    args = ("--recipes", "mnist_specified_cnn", "--epochs", "1", "--limit-train", "640", "--seeds", "1")
    out = run("recipes.py", *args, "--frameworks", "lightning", "keras", json_path=path)
    assert [(r["framework"], r["seed"]) for r in out["runs"]] == [("lightning", 0), ("keras", 0)]
    for r in out["runs"]:
        assert 0.0 <= r["test_acc"] <= 1.0 and r["wall_s"] > 0 and r["parameters"] == 58_796 and r["epochs"] == 1
        assert r["machine"]["cpu"] and r["shortened"] == {"epochs": 1, "limit_train": 640}
    assert {row["framework"] for row in out["summary"]} == {"lightning", "keras"}
    again = run("recipes.py", *args, "--seed", "3", json_path=path)  # Lightning again: its run replaced, Keras kept
    assert [(r["framework"], r["seed"]) for r in again["runs"]] == [("keras", 0), ("lightning", 3)]


def test_the_recipe_table_in_the_docs_is_the_committed_benchmark():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import recipes
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    committed = ROOT / "results" / "benchmarks" / "recipes.json"
    page = (ROOT / "docs" / "performance.md").read_text()
    block = recipes.BEGIN + page.split(recipes.BEGIN, 1)[1].split(recipes.END, 1)[0] + recipes.END
    assert block == recipes.docs_block(json.loads(committed.read_text())), (
        "render it: python benchmarks/recipes.py --json results/benchmarks/recipes.json --update-docs")
    results = json.loads(committed.read_text())
    assert results["summary"] == recipes.summarise(results["runs"])  # the summary is the runs', not edited
