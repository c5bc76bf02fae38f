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


@pytest.mark.slow
def test_recipes_smoke_denoiser(tmp_path):
    """A denoiser's recipe runs its own entry points (train_denoiser) and is scored by test PSNR, in dB."""
    out = run("recipes.py", "--recipes", "denoise_reference", "--epochs", "1", "--limit-train", "256", "--seeds", "1",
              "--frameworks", "lightning", "keras", json_path=tmp_path / "recipes.json")
    assert [(r["framework"], r["seed"]) for r in out["runs"]] == [("lightning", 0), ("keras", 0)]
    for r in out["runs"]:
        assert "test_acc" not in r and 5 < r["test_psnr"] < 40 and 0 < r["test_ssim"] <= 1 and r["parameters"] == 28_353
        assert r["command"].startswith(f"python -m {'lightning_impl' if r['framework'] == 'lightning' else 'keras_ref'}"
                                       ".train_denoiser --config configs/denoise_reference.yaml")
    assert {row["metric"] for row in out["summary"]} == {"test_psnr"}
    recipes = _recipes_module()
    lines = recipes.table(out["summary"])
    assert all(" dB (n=1)" in line for line in lines[2:]) and not recipes.gaps(out["runs"])  # no McNemar on PSNR


@pytest.mark.parametrize("name", ["recipes.json", "keras_backends.json"])
def test_the_recipe_table_in_the_docs_is_the_committed_benchmark(name):
    """Each committed recipe benchmark has its own block in docs/performance.md, rendered from it."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import recipes
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    committed = ROOT / "results" / "benchmarks" / name
    page = (ROOT / "docs" / "performance.md").read_text()
    begin, end = recipes.markers(committed)
    block = begin + page.split(begin, 1)[1].split(end, 1)[0] + end
    assert block == recipes.docs_block(json.loads(committed.read_text()), name), (
        f"render it: python benchmarks/recipes.py --json results/benchmarks/{name} --update-docs")
    results = json.loads(committed.read_text())
    assert results["summary"] == recipes.summarise(results["runs"])  # the summary is the runs', not edited


def test_the_recipe_table_says_when_a_recipe_changed_after_it_was_measured():
    """A row measured on an earlier text of its config is marked as such, so the docs never present a changed recipe's
    old figures as today's."""
    recipes = _recipes_module()
    committed = json.loads((ROOT / "results" / "benchmarks" / "recipes.json").read_text())
    now = {**committed, "runs": [{**r, "config_sha": recipes.config_sha(r["recipe"])} for r in committed["runs"]]}
    assert "earlier text" not in recipes.docs_block(now)
    older = {**now, "runs": [{**r, "config_sha": "0" * 16} if r["framework"] == "keras" else r for r in now["runs"]]}
    said = [line for line in recipes.docs_block(older).splitlines() if line.startswith("Measured on an earlier text of")]
    assert len(said) == 1 and all(f"`configs/{r['recipe']}.yaml`" in said[0] for r in committed["runs"])


def _recipes_module():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import recipes
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return recipes


def _run(framework, seed, acc, errors, cpu="CPU A", bf16=False, sha="text 1"):
    machine = {"cpu": cpu, "native_bf16": bf16, "cores": 2, "threads": 2, "torch": "x", "python": "x", "gpu": None}
    return {"recipe": "mnist_improved", "framework": framework, "backend": None, "seed": seed, "dataset": "mnist",
            "test_errors": errors, "test_acc": acc, "parameters": 1, "epochs": 1, "wall_s": 1.0, "train_s": 1.0,
            "images_per_s": 1.0, "precision": "32-true", "machine": machine, "config_sha": sha}


def test_recipe_benchmark_keeps_machines_apart_and_pairs_the_frameworks_seed_by_seed(tmp_path):
    """One row per recipe, framework and machine (an AMX CPU's bf16 runs are never averaged with float32 ones);
    re-measuring on one machine replaces that machine's runs only; the gap table pairs a seed's two runs on the same
    test images (McNemar) and leaves Welch out where a side has one run."""
    recipes = _recipes_module()
    xeon = [_run("lightning", s, 0.996, None, cpu="CPU B", bf16=True) for s in (0, 1, 2)]
    here = [_run("lightning", 0, 0.9960, list(range(40))), _run("keras", 0, 0.9930, list(range(10, 80)))]
    assert len(recipes.summarise(xeon + here)) == 3  # Lightning on B, Lightning on A, Keras on A
    path = tmp_path / "recipes.json"
    recipes.save(path, here, xeon)
    again = [_run("lightning", 0, 0.9961, list(range(39)))]
    recipes.save(path, again, json.loads(path.read_text())["runs"])
    runs = json.loads(path.read_text())["runs"]
    assert [(r["machine"]["cpu"], r["framework"], r["test_acc"]) for r in runs] == (
        [("CPU B", "lightning", 0.996)] * 3 + [("CPU A", "keras", 0.9930), ("CPU A", "lightning", 0.9961)])
    (row,) = recipes.gaps(here)  # CPU B has no Keras runs: no row
    assert row[1].startswith("CPU A, no AMX") and row[4] == "-0.30" and row[5] == "—"
    # right only in Lightning: 40..79 (40 images); only in Keras: 0..9 (10); p of 10 in 50 under a fair coin
    assert row[6].startswith("40 / 10") and float(row[7]) < 0.001
    same = [_run("lightning", 0, 0.996, [1, 2]), _run("keras", 0, 0.996, [2, 1])]
    assert recipes.gaps(same)[0][6:] == ["0 / 0 (seeds 0)", "1.00"]
    # The recipe's text changed: every earlier run of it, on any machine, measured another recipe and goes.
    edited = [_run("keras", 1, 0.995, [3], sha="text 2")]
    stale = recipes.save(path, edited, json.loads(path.read_text())["runs"])
    assert len(stale) == 5 and json.loads(path.read_text())["runs"] == edited


def test_added_seeds_join_the_row_and_replace_only_their_own_seed(tmp_path):
    """``--add``: seeds measured in another sitting join the row's earlier runs; a seed measured again replaces its
    own earlier run only, and another machine's runs stay."""
    recipes = _recipes_module()
    path = tmp_path / "recipes.json"
    first = [_run("lightning", 0, 0.9960, [1]), _run("lightning", 1, 0.9950, [2]), _run("keras", 0, 0.9930, [3])]
    recipes.save(path, first, [_run("lightning", 0, 0.996, None, cpu="CPU B")])
    recipes.save(path, [_run("lightning", 1, 0.9955, [4]), _run("lightning", 2, 0.9965, [5])],
                 json.loads(path.read_text())["runs"], add=True)
    runs = json.loads(path.read_text())["runs"]
    assert sorted((r["machine"]["cpu"], r["framework"], r["seed"], r["test_acc"]) for r in runs) == [
        ("CPU A", "keras", 0, 0.9930), ("CPU A", "lightning", 0, 0.9960), ("CPU A", "lightning", 1, 0.9955),
        ("CPU A", "lightning", 2, 0.9965), ("CPU B", "lightning", 0, 0.996)]
    rows = json.loads(path.read_text())["summary"]
    assert sorted(r["seeds"] for r in rows if r["framework"] == "lightning") == [[0], [0, 1, 2]]
    with pytest.raises(SystemExit):
        recipes.parse_args(["--add"])  # nothing to add to


def _benchmark(name: str):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_the_parity_gap_table_pairs_seeds_and_replaces_a_remeasured_row(tmp_path):
    """benchmarks/parity_gap.py: a row per recipe and side from finished run folders; Welch over the seeds, McNemar
    on the images one framework's run gets right and its same-seed twin does not; a row measured again replaces
    the old one; an unfinished run is refused by name."""
    gap = _benchmark("parity_gap")

    def folder(name: str, seed: int, errors: list[int], finished: bool = True) -> str:
        path = tmp_path / name
        path.mkdir()
        metrics = {"seed": seed, "dataset": "mnist", "test_acc": 1 - len(errors) / 10_000, "test_errors": errors,
                   "finished": finished}
        (path / "metrics.json").write_text(json.dumps(metrics))
        return str(path)

    lightning = [folder(f"l{s}", s, list(range(40))) for s in range(3)]
    keras = [folder(f"k{s}", s, list(range(20, 90))) for s in range(3)]  # 20 right only in Keras, 50 only in L
    out = tmp_path / "gap.json"
    gap.main(["--recipe", "mnist_improved", "--side", "before", "--lightning", *lightning, "--keras", *keras,
              "--json", str(out)])
    (row,) = json.loads(out.read_text())["rows"]
    cells = gap.gap_row(row)
    assert cells[3:6] == ["99.60 ± 0.00 (n=3)", "99.30 ± 0.00 (n=3)", "-0.30"]
    assert cells[7] == "150 / 60 (3 seed pairs)" and float(cells[8]) < 1e-6
    again = [folder(f"k{s}b", s, list(range(40))) for s in range(3)]
    gap.main(["--recipe", "mnist_improved", "--side", "before", "--lightning", *lightning, "--keras", *again,
              "--json", str(out)])
    (row,) = json.loads(out.read_text())["rows"]
    cells = gap.gap_row(row)
    assert cells[5] == "+0.00" and cells[7:9] == ["0 / 0 (3 seed pairs)", "1.00"]
    unfinished = folder("late", 0, [], finished=False)
    with pytest.raises(SystemExit, match="late: no list of test errors"):
        gap.main(["--recipe", "x", "--side", "after", "--lightning", unfinished, "--keras", *keras, "--json", str(out)])


def test_the_parity_gap_table_in_the_docs_is_the_committed_file():
    gap = _benchmark("parity_gap")
    committed = ROOT / "results" / "benchmarks" / "parity_gap.json"
    page = (ROOT / "docs" / "parity.md").read_text()
    block = gap.BEGIN + page.split(gap.BEGIN, 1)[1].split(gap.END, 1)[0] + gap.END
    assert block == gap.docs_block(json.loads(committed.read_text())), (
        "render it: python benchmarks/parity_gap.py --json results/benchmarks/parity_gap.json --update-docs")


def test_keras_defaults_trains_with_keras_own_initialisation_and_adam(monkeypatch):
    """benchmarks/keras_defaults.py, the 'before' side of the gap: the same trainer with Keras' glorot kernels, zero
    biases and Keras' Adam, and a recipe with torch's coupled weight decay refused (Keras' Adam has none)."""
    import keras

    from keras_ref import recipes, train

    defaults = _benchmark("keras_defaults")
    seen = {}
    monkeypatch.setattr(train, "main", lambda argv: seen.update(init=train.torch_init, adam=recipes.TorchAdam) or {})
    monkeypatch.setattr(train, "torch_init", train.torch_init)  # restored after the test, as is TorchAdam
    monkeypatch.setattr(recipes, "TorchAdam", recipes.TorchAdam)
    defaults.main([])
    model = object()
    assert seen["init"](model, 0) is model
    adam = seen["adam"](1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8)
    from keras_ref.torch_like import TorchAdam

    assert isinstance(adam, keras.optimizers.Adam) and not isinstance(adam, TorchAdam)  # Keras' own update
    with pytest.raises(SystemExit, match="coupled weight decay"):
        seen["adam"](1e-3, l2=1e-4)


@pytest.mark.slow
def test_test_time_views_scores_the_same_weights_with_and_without_the_shifts(tiny_classifier_run, tmp_path):
    """benchmarks/test_time_views.py: one trained run scored plain and over its 9 shifted views, the two compared on
    the same images; the plain score is the run's own model without views (the same predictions ImageClassifier
    makes with shift_tta 0)."""
    views = _benchmark("test_time_views")
    out = views.main([str(tiny_classifier_run), "--pixels", "2", "--limit-test", "300", "--json", str(tmp_path / "v.json")])
    (row,) = out["runs"]
    assert row["images"] == 300 and row["pixels"] == 2 and 0.8 < row["plain_acc"] <= 1 and 0.5 < row["views_acc"] <= 1
    s = out["summary"]
    changed = s["right_only_with_views"] + s["right_only_without"]
    assert abs(row["views_acc"] - row["plain_acc"]) * 300 == pytest.approx(abs(s["right_only_with_views"] - s["right_only_without"]))
    assert 0 <= s["mcnemar_p"] <= 1 and (changed > 0 or s["mcnemar_p"] == 1.0)
    assert json.loads((tmp_path / "v.json").read_text())["summary"] == s


def test_the_test_time_views_table_in_the_docs_is_the_committed_files():
    views = _benchmark("test_time_views")
    results = [json.loads(f.read_text()) for f in sorted(views.RESULTS.glob("test_time_views_*.json"))]
    assert results, "no committed results/benchmarks/test_time_views_*.json"
    page = views.DOCS.read_text()
    block = views.BEGIN + page.split(views.BEGIN, 1)[1].split(views.END, 1)[0] + views.END
    assert block == views.docs_block(results), "render it: python benchmarks/test_time_views.py --update-docs"


def test_the_parts_at_once_table_in_the_docs_is_the_committed_file():
    """docs/performance.md's table of one part twice, one after the other and side by side, is rendered from the
    committed benchmark, whose speed-ups are its own wall times' and images/s' ratios (not edited)."""
    at_once = _benchmark("parts_at_once")
    result = json.loads(at_once.RESULT.read_text())
    page = at_once.DOCS.read_text()
    block = at_once.BEGIN + page.split(at_once.BEGIN, 1)[1].split(at_once.END, 1)[0] + at_once.END
    assert block == at_once.docs_block(result), "render it: python benchmarks/parts_at_once.py --update-docs"
    assert result["speedup"] == pytest.approx(result["alone"]["wall_s"] / result["together"]["wall_s"])
    rates = [sum(r["images_per_s"] for r in result[way]["runs"]) for way in ("alone", "together")]
    assert result["training_speedup"] == pytest.approx(rates[1] / (rates[0] / result["jobs"]))


def test_compute_budget_counts_multiply_adds_and_projects_a_run():
    """benchmarks/compute_budget.py: the multiply-adds of a known net, counted exactly; a run's projection is its
    steps and evaluation batches times their seconds; a smoke measurement of a small whitened net."""
    import torch
    from torch import nn

    budget = _benchmark("compute_budget")
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3))
    assert budget.forward_macs(net, (1, 4, 4)) == 2 * 4 * 4 * 9 + 32 * 3  # per output value: 9 products; 32 x 3
    m = {"train_batch": 512, "eval_batch": 1000, "step_s": 1.0, "eval_batch_s": 2.0}
    p = budget.projection(m, epochs=8, train_images=45_000, val_images=5_000, test_images=10_000)
    assert p == {"training_s": 8 * 88 * 1.0, "evaluation_s": (8 * 5 + 10) * 2.0, "run_s": 704.0 + 100.0}
    assert budget.split_sizes(budget.variant_config(None, None)) == (45_000, 5_000, 10_000)
    config = budget.variant_config([8, 16, 16], 1)
    assert config["trainer"]["max_epochs"] == 1 and config["model"]["net"]["init_args"]["widths"] == [8, 16, 16]
    got = budget.measure(config, rounds=1, steps=1, batch=4)
    assert got["step_s"] > 0 and got["eval_batch_s"] > 0 and got["views"] == 2 and got["threads"] == torch.get_num_threads()
    assert got["gflops"] == pytest.approx(6 * got["forward_macs"] * 4 / got["step_s"] / 1e9)
    from lightning_impl.card import build_net

    shipped = build_net(budget.variant_config(None, None)["model"]["net"])
    # By hand, output values x products each: the 2x2 stem 24 x 31^2 x 12; conv1_1 64 x 31^2 x 216; conv1_2
    # 64 x 15^2 x 576; conv2_1 128 x 15^2 x 576; conv2_2 and conv3_1 128 x 7^2 x 1152 each; conv3_2 128 x 3^2 x 1152;
    # the head 128 x 10.
    by_hand = (24 * 961 * 12 + 64 * 961 * 216 + 64 * 225 * 576 + 128 * 225 * 576 + 2 * 128 * 49 * 1152
               + 128 * 9 * 1152 + 1280)
    assert budget.forward_macs(shipped, (3, 32, 32)) == by_hand == 54_223_904
    assert 0 < got["forward_macs"] < by_hand
    # --train: the command a user types for a variant, and its runs as the table writes them
    cmd = budget.train_command("half width", 3, "/tmp/r")
    assert cmd[1:5] == ["-m", "lightning_impl.train", "--config", "configs/cifar10_whitened.yaml"]
    assert cmd[cmd.index("--model.net.init_args.widths") + 1] == "[32, 64, 64]" and "--trainer.max_epochs" not in cmd
    assert cmd[cmd.index("--seed_everything") + 1] == "3"
    wide = budget.train_command("airbench94's size", 0, "/tmp/r")
    assert wide[wide.index("--trainer.max_epochs") + 1] == "10"
    runs = [{"wall_s": 420.0, "test_acc": 0.8846}, {"wall_s": 480.0, "test_acc": 0.8854}]
    assert budget.measured_text(runs[:1], "x") == "7.0 min, 88.46 % (n=1, x)"
    assert budget.measured_text(runs, "x") == "7.5 min, 88.50 ± 0.06 % (n=2, x)" and budget.measured_text([], "x") == "—"
    half = {"name": "half width", "projection": {"run_s": 300.0}}
    assert budget.goal_line(half, 1.2) == ("Against the goal of ≥ 91 % in ≤ 6 min a run, half width: projected 6.0 min, "
                                           "1.00× the time (not trained whole on this machine).")
    assert budget.goal_line({**half, "runs": runs}, 1.2).endswith(
        "measured 7.5 min and 88.50 % test, 1.25× the time, 2.50 pp short of the accuracy.")


def test_the_compute_budget_table_in_the_docs_is_the_committed_file():
    budget = _benchmark("compute_budget")
    result = json.loads(budget.RESULT.read_text())
    page = budget.DOCS.read_text()
    block = budget.BEGIN + page.split(budget.BEGIN, 1)[1].split(budget.END, 1)[0] + budget.END
    assert block == budget.docs_block(result), "render it: python benchmarks/compute_budget.py --update-docs"
    assert [v["name"] for v in result["variants"]] == list(budget.VARIANTS)
    for v in result["variants"]:  # what the JSON says of each net is what the net is
        widths, epochs, _ = budget.VARIANTS[v["name"]]
        config = budget.variant_config(widths, epochs)
        assert v["epochs"] == config["trainer"]["max_epochs"]
        assert v["parameters"] == sum(p.numel() for p in __import__("lightning_impl.card", fromlist=["build_net"])
                                      .build_net(config["model"]["net"]).parameters())
