"""Reliability: every bad input ends in one clear line (status 2, no traceback) before any work starts, checkpoints
are read as data only, metrics.json is strict JSON, and a killed run resumes to the metrics it would have had.

docs/reliability.md lists the cases; each row is a case below.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from lightning_impl import checkpoints

ROOT = Path(__file__).resolve().parents[1]
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def refused(main, argv, capsys) -> str:
    """Run an entry point that must refuse: returns its one error line."""
    with pytest.raises(SystemExit) as exit:
        main(argv)
    err = capsys.readouterr().err
    assert exit.value.code == 2, err
    assert "Traceback" not in err
    lines = [l for l in err.strip().splitlines() if l.startswith("error:") or "error:" in l]
    assert lines, err
    return lines[-1]


@pytest.fixture
def offline(monkeypatch):
    """No network, as on a machine without internet: any download attempt fails as urllib fails there."""
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(urllib.request.OpenerDirector, "open", lambda self, *a, **k: no_network())


# ----------------------------------------------------------------------------- Lightning entry points


LIGHTNING_CASES = {
    "zero epochs": (["--trainer.max_epochs", "0"], "max_epochs 0"),
    "zero batches": (["--trainer.limit_train_batches", "0"], "limit_train_batches 0"),
    "no epoch limit with a schedule over the run": (["--trainer.max_epochs", "-1"], "max_epochs -1"),
    "negative learning rate": (["--model.optimizer.init_args.lr", "-1"], "--model.optimizer.init_args.lr -1.0: out of range"),
    "zero batch size": (["--data.init_args.batch_size", "0"], "batch_size and eval_batch_size must be positive, got 0"),
    "validation fraction above 1": (["--data.init_args.val_fraction", "1.5"], "val_fraction must lie in (0, 1), got 1.5"),
    "CIFAR-10 data for the MNIST net": (["--data", "lightning_impl.data.CIFAR10DataModule"], "does not take cifar10 images"),
    "resume a folder that is not a run": (["--resume", "/nonexistent/run"], "nothing to resume"),
    "label smoothing above 1": (["--model.label_smoothing", "1.5"], "label_smoothing must lie in [0, 1], got 1.5"),
    "warm-up over the whole run": (["--model.warmup_fraction", "1.0"], "warmup_fraction must lie in [0, 1), got 1.0"),
    "a GPU on a machine without one": (["--trainer.accelerator", "gpu"], "(see --help)"),
    "max_epochs below -1": (["--trainer.max_epochs", "-5"], "max_epochs"),
    "a net with fewer outputs than classes": (["--model.net.init_args.num_classes", "3"], "has 3 outputs, but mnist has 10"),
    "a denoiser recipe": (["--config", "configs/denoise_reference.yaml"], "this is a denoiser recipe: use lightning_impl.train_denoiser"),
    "a config that is not a recipe": (["--config", "/etc/passwd"], "not a recipe"),
    "a config that does not exist": (["--config", "nowhere.yaml"], "--config nowhere.yaml: no such file"),
    "a typo in a class argument": (["--model.net.init_args.widht", "3"], "--model.net.init_args.widht: Option 'widht' is not accepted"),
    "a value of the wrong type": (["--trainer.max_epochs", "abc"], "--trainer.max_epochs abc: expected int or null"),
}


@pytest.mark.parametrize("argv,says", LIGHTNING_CASES.values(), ids=LIGHTNING_CASES.keys())
def test_classifier_refuses_before_work(argv, says, tmp_path, capsys):
    from lightning_impl.train import main

    line = refused(main, [*argv, "--trainer.logger.init_args.save_dir", str(tmp_path), *QUIET], capsys)
    assert says in line
    assert not list(tmp_path.glob("*/version_*/metrics.json"))  # nothing reported


def test_a_config_that_is_not_yaml_is_named(tmp_path, capsys):
    from lightning_impl.train import main

    (tmp_path / "bad.yaml").write_text("trainer: [unclosed\n")
    line = refused(main, ["--config", str(tmp_path / "bad.yaml"), "--trainer.logger.init_args.save_dir", str(tmp_path)], capsys)
    assert f"--config {tmp_path / 'bad.yaml'}: not valid YAML" in line


def test_a_classifier_recipe_given_to_the_denoiser_names_the_right_entry_point(tmp_path, capsys):
    from lightning_impl.train_denoiser import main

    line = refused(main, ["--config", "configs/mnist_improved.yaml", "--trainer.logger.init_args.save_dir", str(tmp_path)], capsys)
    assert "this is a classifier recipe: use lightning_impl.train" in line


def test_denoiser_refuses_a_noise_level_out_of_range(tmp_path, capsys):
    from lightning_impl.train_denoiser import main

    line = refused(main, ["--data.sigma", "1.5", "--trainer.logger.init_args.save_dir", str(tmp_path)], capsys)
    assert "sigma" in line


@pytest.mark.parametrize("flag", ["--data.train_limit", "--data.val_limit", "--data.test_limit"])
def test_denoiser_refuses_a_run_on_no_images(flag, tmp_path, capsys):
    """0 images would train (or score) nothing and still record an untrained net's scores as a finished run."""
    from lightning_impl.train_denoiser import main

    line = refused(main, [flag, "0", "--trainer.logger.init_args.save_dir", str(tmp_path)], capsys)
    assert flag.removeprefix("--data.") in line and "positive number of images" in line
    assert not list(tmp_path.glob("*/version_*"))


def test_missing_data_offline_names_folder_file_variable_and_flag(tmp_path, capsys, offline):
    from lightning_impl.train import main

    line = refused(main, ["--data.init_args.data_dir", str(tmp_path / "empty"), *QUIET,
                          "--trainer.logger.init_args.save_dir", str(tmp_path)], capsys)
    for part in (str(tmp_path / "empty"), "train-images-idx3-ubyte", "LIGHTNING_IMPL_DATA", "--data.data_dir"):
        assert part in line, part


def test_cifar10_with_one_batch_missing_names_it(tmp_path, offline):
    from core.datasets import DatasetUnavailableError, ensure_available

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    staged = Path(os.environ["LIGHTNING_IMPL_DATA"]) / "cifar-10-batches-py"
    for f in staged.iterdir():
        if f.name != "data_batch_3":
            (folder / f.name).symlink_to(f)
    with pytest.raises(DatasetUnavailableError, match="data_batch_3"):
        ensure_available("cifar10", tmp_path, download=True)


# ----------------------------------------------------------------------------- argparse entry points


def _module_main(name):
    import importlib

    return importlib.import_module(name).main


ARGPARSE_CASES = {
    "ablation: steps not numbers": ("experiments.ablation", ["--dataset", "mnist", "--steps", "a,b"], "--steps"),
    "ablation: step out of range": ("experiments.ablation", ["--dataset", "mnist", "--steps", "0,9"], "--steps"),
    "ablation: resume a folder without a ladder": ("experiments.ablation", ["--resume", "/nonexistent"], "--resume"),
    "ablation: zero seeds": ("experiments.ablation", ["--dataset", "mnist", "--seeds", "0"], "--seeds"),
    "denoise experiment: zero jobs": ("experiments.denoising", ["--jobs", "0"], "--jobs"),
    "denoise experiment: resume a foreign folder": ("experiments.denoising", ["--resume", "/nonexistent"], "budget.json"),
    "ensemble: not a run folder": ("lightning_impl.ensemble", ["/nonexistent"], "config.yaml"),
    "parity: zero seeds": ("parity", ["--seeds", "0"], "--seeds"),
    "parity: a check-5 recipe without check 5": ("parity", ["--recipe", "configs/mnist_specified_cnn.yaml"], "--recipe"),
    "parity: a check-5 recipe that does not exist": ("parity", ["--accuracy", "--recipe", "nowhere.yaml"], "--recipe nowhere.yaml"),
    "baseline: too few training images": ("parity.baseline", ["--limit-train", "5"], "--limit-train"),
    "keras: negative epochs": ("keras_ref.train", ["--epochs", "-1"], "--epochs"),
    "keras: a recipe file that does not exist": ("keras_ref.train", ["--config", "nowhere.yaml"], "nowhere.yaml"),
    "keras denoiser: sigma out of range": ("keras_ref.train_denoiser", ["--sigma", "1.5"], "sigma"),
}


def _recipe(tmp_path, text: str) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return str(path)


KERAS_RECIPE_CASES = {  # values Lightning refuses are refused by the Keras reader too, naming the key
    "batch size 0": ("data:\n  init_args:\n    batch_size: 0\n", "data.init_args.batch_size: must lie in [1, 2147483647]"),
    "validation fraction 1.5": ("data:\n  init_args:\n    val_fraction: 1.5\n", "data.init_args.val_fraction"),
    "label smoothing 2": ("model:\n  label_smoothing: 2.0\n", "model.label_smoothing: must lie in [0, 1]"),
    "warm-up NaN": ("model:\n  warmup_fraction: .nan\n", "model.warmup_fraction: expected a number"),
    "a typo in the net's init_args": ("model:\n  net:\n    class_path: lightning_impl.models.ImprovedCNN\n"
                                      "    init_args:\n      batch_nrom: true\n", "model.net.init_args.batch_nrom"),
}


@pytest.mark.parametrize("text,says", KERAS_RECIPE_CASES.values(), ids=KERAS_RECIPE_CASES.keys())
def test_keras_trainer_refuses_out_of_range_recipe_values(text, says, tmp_path, capsys):
    from keras_ref.train import main

    assert says in refused(main, ["--config", _recipe(tmp_path, text), "--runs-dir", str(tmp_path)], capsys)


def test_an_unknown_monitor_key_ends_in_one_line_keeping_the_checkpoints(tmp_path, capsys):
    """Lightning finds it out only at the first validation: one line, not a traceback, what was written kept."""
    from lightning_impl.train import main

    line = refused(main, ["--checkpoint.monitor", "val_acc_typo", "--trainer.max_epochs", "1",
                          "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
                          "--trainer.logger.init_args.save_dir", str(tmp_path), *QUIET], capsys)
    assert "val_acc_typo" in line
    assert not list(tmp_path.glob("*/version_*/metrics.json"))


@pytest.mark.parametrize("where,says", [("a_file/out.json", "is a file"), (".", "is a folder")],
                         ids=["below a file", "a folder"])
def test_an_output_file_that_cannot_be_written_is_refused_before_any_work(where, says, tmp_path, capsys):
    from parity.__main__ import main

    (tmp_path / "a_file").write_text("")
    line = refused(main, ["--pairs", "specified_cnn", "--json", str(tmp_path / where)], capsys)
    assert "--json" in line and says in line


def test_a_runs_folder_that_is_a_file_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    from keras_ref.train import main

    line = refused(main, ["--runs-dir", str(tmp_path / "file" / "runs"), "--quiet"], capsys)
    assert "--runs-dir" in line and "is a file" in line


@pytest.mark.parametrize("module,argv,says", ARGPARSE_CASES.values(), ids=ARGPARSE_CASES.keys())
def test_argparse_entry_points_refuse_in_one_line(module, argv, says, capsys):
    main = _module_main("parity.__main__" if module == "parity" else module)
    assert says in refused(main, argv, capsys)


def test_a_malformed_recipe_is_refused_by_the_keras_trainer(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: [unclosed\n")
    from keras_ref.train import main

    assert "bad.yaml" in refused(main, ["--config", str(bad)], capsys)


def test_keras_missing_data_offline_is_one_line(tmp_path, capsys, offline):
    from keras_ref.train import main

    line = refused(main, ["--data-dir", str(tmp_path / "empty"), "--runs-dir", str(tmp_path), "--quiet"], capsys)
    assert "LIGHTNING_IMPL_DATA" in line and "--data-dir" in line


def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path):
    from PIL import Image

    from core.preprocess import ImageInputError, read_image

    Image.new("1", (8000, 8000)).save(tmp_path / "bomb.png")  # a few kB claiming 64 million pixels
    assert (tmp_path / "bomb.png").stat().st_size < 100_000
    with pytest.raises(ImageInputError, match="8000 x 8000 pixels"):
        read_image(tmp_path / "bomb.png")


def test_an_extraction_cache_below_a_file_is_named_with_its_variable(tmp_path, monkeypatch):
    from core.datasets import DatasetUnavailableError, ensure_available

    (tmp_path / "file").write_text("")
    monkeypatch.setenv("LIGHTNING_IMPL_CACHE", str(tmp_path / "file" / "cache"))
    staged = Path(os.environ["LIGHTNING_IMPL_DATA"])
    if not (staged / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip("the staged MNIST is not compressed: nothing is extracted")
    if (staged / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.skip("the staged MNIST is already decompressed: nothing is extracted")
    with pytest.raises(DatasetUnavailableError, match=f"{tmp_path / 'file'} is a file.*LIGHTNING_IMPL_CACHE"):
        ensure_available("mnist", staged, download=False)


# ----------------------------------------------------------------------------- checkpoints are data, never code


class Planted:
    """Unpickling this would run a command: what a malicious checkpoint holds."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def plant(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}, "payload": Planted(marker)}, path)


def test_a_planted_checkpoint_is_refused_everywhere(tmp_path, capsys):
    marker = tmp_path / "code-ran"
    run = tmp_path / "runs" / "planted" / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text((ROOT / "configs" / "mnist_specified_cnn.yaml").read_text())
    plant(run / "checkpoints" / "best-epoch=0-val_acc=0.9.ckpt", marker)
    plant(run / "checkpoints" / "last.ckpt", marker)
    with pytest.raises(checkpoints.CheckpointError, match="refused"):  # evaluation, and what every path calls
        checkpoints.load(run / "checkpoints" / "last.ckpt")
    with pytest.raises(checkpoints.CheckpointError, match="refused"):  # Lightning's own loading (resume, test)
        checkpoints.SafeCheckpointIO().load_checkpoint(run / "checkpoints" / "last.ckpt")
    from lightning_impl.ensemble import main as ensemble
    from lightning_impl.train import main as train

    assert "refused" in refused(ensemble, [str(run)], capsys)
    assert "refused" in refused(train, ["--resume", str(run)], capsys)
    assert not marker.exists()


def test_a_checkpoint_cut_short_is_never_resumed_from(tmp_path, capsys):
    run = tmp_path / "runs" / "cut" / "version_0"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text((ROOT / "configs" / "mnist_specified_cnn.yaml").read_text())
    torch.save({"state_dict": {"w": torch.zeros(1000)}}, run / "checkpoints" / "last.ckpt")
    data = (run / "checkpoints" / "last.ckpt").read_bytes()
    (run / "checkpoints" / "last.ckpt").write_bytes(data[: len(data) // 2])
    from lightning_impl.train import main

    assert "not a complete checkpoint" in refused(main, ["--resume", str(run)], capsys)


# ----------------------------------------------------------------------------- honest output files


@pytest.mark.slow
def test_a_diverging_run_stops_at_the_first_non_finite_loss(tmp_path, capsys):
    from lightning_impl.train import main

    with pytest.raises(SystemExit) as exit:
        main(["--model.optimizer", "torch.optim.SGD", "--model.optimizer.init_args.lr", "1e5",
              "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "50", "--trainer.limit_val_batches", "2",
              "--trainer.logger.init_args.save_dir", str(tmp_path), *QUIET])
    err = capsys.readouterr().err
    assert exit.value.code == 1 and "training loss is" in err and "epoch 0" in err and "step" in err, err
    assert not list(tmp_path.glob("*/version_*/metrics.json"))


# ----------------------------------------------------------------------------- killed, then resumed


TINY = ["--trainer.max_epochs", "3", "--trainer.limit_train_batches", "12", "--trainer.limit_val_batches", "2",
        "--trainer.limit_test_batches", "2", "--data.init_args.batch_size", "32", *QUIET]
TINY_DENOISER = ["--trainer.max_epochs", "3", "--data.train_limit", "384", "--data.val_limit", "64",
                 "--data.test_limit", "64", "--data.batch_size", "32", *QUIET]
ENTRY = {"classifier": ("lightning_impl.train", TINY), "denoiser": ("lightning_impl.train_denoiser", TINY_DENOISER)}
KEYS = {"classifier": ("test_acc", "test_loss", "best_val_acc"), "denoiser": ("test_psnr", "test_ssim", "test_loss", "best_val_psnr")}


def run(module: str, argv: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *argv], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=600)


def kill_config(tmp_path: Path, point: str, epoch: int, batch: int, sig: str = "SIGKILL") -> Path:
    path = tmp_path / f"kill_{point}.yaml"
    path.write_text("trainer:\n  callbacks:\n    - class_path: interrupt.KillAt\n      init_args:\n"
                    f"        point: {point}\n        once: {tmp_path / ('killed_' + point)}\n"
                    f"        epoch: {epoch}\n        batch: {batch}\n        signal: {sig}\n")
    return path


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: each task's tiny run, never interrupted."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    out = {}
    for task, (module, argv) in ENTRY.items():
        runs = tmp_path_factory.mktemp(f"ref_{task}")
        done = run(module, [*argv, "--trainer.logger.init_args.save_dir", str(runs)], env)
        assert done.returncode == 0, done.stderr[-2000:]
        out[task] = json.loads((Path(done.stdout.strip().splitlines()[-1]) / "metrics.json").read_text())
    return out


@pytest.mark.slow
@pytest.mark.parametrize("task", ENTRY)
@pytest.mark.parametrize("point,epoch,batch", [("train_batch", 1, 5), ("save_checkpoint", 1, 0), ("test", 0, 0)],
                         ids=["mid-epoch", "during a checkpoint save", "during the test phase"])
def test_killed_run_resumes_to_the_same_metrics(task, point, epoch, batch, uninterrupted, tmp_path):
    module, argv = ENTRY[task]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    runs = tmp_path / "runs"
    killed = run(module, [*argv, "--config", str(kill_config(tmp_path, point, epoch, batch)),
                          "--trainer.logger.init_args.save_dir", str(runs)], env)
    assert killed.returncode == -9, killed.stderr[-2000:]  # SIGKILL
    (run_dir,) = runs.glob("*/version_*")
    assert not (run_dir / "metrics.json").exists()
    resumed = run(module, ["--resume", str(run_dir)], env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert Path(resumed.stdout.strip().splitlines()[-1]) == run_dir.resolve()  # the same folder, not a new one
    metrics = json.loads((run_dir / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"not strict JSON: {c}"))
    assert metrics["finished"] is True
    assert {k: metrics[k] for k in KEYS[task]} == {k: uninterrupted[task][k] for k in KEYS[task]}
    with open(run_dir / "metrics.csv") as f:  # the epochs before the kill are kept, none twice
        assert [r["epoch"] for r in csv.DictReader(f) if r.get("epoch_time_s")] == ["0", "1", "2"]
    # The record times the whole run, not only the part after the kill.
    assert len(metrics["epoch_time_s"]) == len(metrics["train_images_per_s"]) == 3
    assert sum(metrics["epoch_time_s"]) <= metrics["train_s"] < sum(metrics["epoch_time_s"]) + 60


@pytest.mark.slow
@pytest.mark.parametrize("sig,status", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_stopped_run_exits_non_zero_unfinished_and_resumes_to_the_same_metrics(sig, status, uninterrupted, tmp_path):
    """SIGTERM (a scheduler, `kill`) and SIGINT (Ctrl-C): status 143 / 130, the resume hint, no metrics.json."""
    module, argv = ENTRY["classifier"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    runs = tmp_path / "runs"
    stopped = run(module, [*argv, "--config", str(kill_config(tmp_path, "train_batch", 1, 5, sig)),
                           "--trainer.logger.init_args.save_dir", str(runs)], env)
    (run_dir,) = runs.glob("*/version_*")
    assert stopped.returncode == status, stopped.stderr[-2000:]
    last = stopped.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and f"--resume {run_dir}" in last, last
    assert not (run_dir / "metrics.json").exists()
    resumed = run(module, ["--resume", str(run_dir)], env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    keys = KEYS["classifier"]
    assert {k: metrics[k] for k in keys} == {k: uninterrupted["classifier"][k] for k in keys}
    assert len(metrics["epoch_time_s"]) == 3


KERAS_AUGMENTED = "data:\n  init_args:\n    augment: lightning_impl.data.augment.digit_augment\n"  # draws per epoch
KERAS_TINY = {"keras_ref.train": ["--epochs", "3", "--limit-train", "512", "--quiet"],
              "keras_ref.train_denoiser": ["--epochs", "3", "--limit-train", "384", "--limit-val", "64",
                                           "--limit-test", "64", "--batch-size", "32", "--quiet"]}
KERAS_KEYS = {"keras_ref.train": ("test_acc", "test_loss", "best_val_acc"),
              "keras_ref.train_denoiser": ("test_psnr", "test_ssim", "test_loss", "best_val_psnr")}


def keras_argv(module: str, tmp: Path) -> list[str]:
    if module == "keras_ref.train":  # augmentation: its layers' seed generators must restart with the epoch
        return [*KERAS_TINY[module], "--config", _recipe(tmp, KERAS_AUGMENTED)]
    return KERAS_TINY[module]


@pytest.fixture(scope="module")
def keras_uninterrupted(tmp_path_factory):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    out = {}
    for module in KERAS_TINY:
        tmp = tmp_path_factory.mktemp(f"keras_ref_{module}")
        done = run(module, [*keras_argv(module, tmp), "--runs-dir", str(tmp / "runs")], env)
        assert done.returncode == 0, done.stderr[-2000:]
        out[module] = Path(done.stdout.strip().splitlines()[-1])
    return out


def keras_killed(module: str, point: str, epoch: int, batch: int, tmp_path: Path, env: dict) -> Path:
    argv = [*keras_argv(module, tmp_path), "--runs-dir", str(tmp_path / "runs")]
    killed = subprocess.run([sys.executable, "-c", "import keras_interrupt; keras_interrupt.main()", module, point,
                             str(epoch), str(batch), str(tmp_path / "killed"), "--", *argv],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs").glob("*/version_*")
    assert not (run_dir / "metrics.json").exists()
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize("module,point,epoch,batch", [
    ("keras_ref.train", "train_batch", 1, 5), ("keras_ref.train", "saving", 1, 0), ("keras_ref.train", "test", 0, 0),
    ("keras_ref.train_denoiser", "train_batch", 1, 3),
], ids=["classifier mid-epoch", "classifier between an epoch's weights and its state", "classifier in the test",
        "denoiser mid-epoch"])
def test_a_killed_keras_run_resumes_to_the_same_metrics(module, point, epoch, batch, keras_uninterrupted, tmp_path):
    """Keras' twin of the Lightning guarantee: every epoch's order, augmentation and noise depend on (seed, epoch)
    alone (keras_ref.epochs) and every finished epoch is saved, weights and optimizer state (keras_ref.fit.LastEpoch)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    run_dir = keras_killed(module, point, epoch, batch, tmp_path, env)
    resumed = run(module, ["--resume", str(run_dir), "--quiet"], env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert Path(resumed.stdout.strip().splitlines()[-1]) == run_dir.resolve()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    reference = json.loads((keras_uninterrupted[module] / "metrics.json").read_text())
    assert {k: metrics[k] for k in KERAS_KEYS[module]} == {k: reference[k] for k in KERAS_KEYS[module]}
    with open(run_dir / "metrics.csv") as f:  # the epochs before the kill kept, none twice
        assert [r["epoch"] for r in csv.DictReader(f)] == ["0", "1", "2"]
    assert len(metrics["epoch_time_s"]) == len(metrics["train_images_per_s"]) == metrics["epochs"] == 3
    assert sum(metrics["epoch_time_s"]) <= metrics["train_s"]


@pytest.mark.slow
def test_a_finished_keras_run_is_resumed_only_to_train_on(keras_uninterrupted, tmp_path):
    import shutil

    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    run_dir = tmp_path / "version_0"
    shutil.copytree(keras_uninterrupted["keras_ref.train"], run_dir)
    before = (run_dir / "metrics.json").read_text()
    again = run("keras_ref.train", ["--resume", str(run_dir)], env)
    assert again.returncode == 2 and "finished its 3 epochs" in again.stderr.strip().splitlines()[-1]
    assert (run_dir / "metrics.json").read_text() == before
    more = run("keras_ref.train", ["--resume", str(run_dir), "--epochs", "4", "--quiet"], env)
    assert more.returncode == 0, more.stderr[-2000:]
    assert (run_dir / "metrics.epochs_3.json").read_text() == before
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == len(metrics["epoch_time_s"]) == 4


WRONG_TOOL = {  # (entry point, argv, folder kind) -> what the refusal says
    "a Lightning denoiser run to the classifier": ("lightning_impl.train", ["--resume", "{lightning_denoiser}"],
                                                   "this is a denoiser recipe: use lightning_impl.train_denoiser"),
    "a Keras run to Lightning": ("lightning_impl.train_denoiser", ["--resume", "{keras_classifier}"], "this is a Keras run"),
    "a Lightning run to Keras": ("keras_ref.train", ["--resume", "{lightning_denoiser}"], "this is a Lightning run"),
    "a Keras denoiser run to the Keras classifier": ("keras_ref.train", ["--resume", "{keras_denoiser}"],
                                                    "this is a denoising run: use keras_ref.train_denoiser"),
    "a Keras run to Lightning's prediction": ("lightning_impl.predict", ["{keras_classifier}", "digit.png"],
                                              "this is a Keras run: use keras_ref.predict"),
    "a denoiser run to the ensemble": ("lightning_impl.ensemble", ["{lightning_denoiser}"], "an ensemble averages classifiers"),
}


@pytest.mark.parametrize("module,argv,says", WRONG_TOOL.values(), ids=WRONG_TOOL.keys())
def test_a_run_given_to_the_wrong_tool_names_the_right_one(module, argv, says, tmp_path, capsys):
    folders = {name: tmp_path / name for name in ("lightning_denoiser", "keras_classifier", "keras_denoiser")}
    for folder in folders.values():
        (folder / "checkpoints").mkdir(parents=True)
    (folders["lightning_denoiser"] / "config.yaml").write_text((ROOT / "configs" / "denoise_reference.yaml").read_text())
    (folders["keras_classifier"] / "recipe.yaml").write_text("task: classification\nepochs: 3\n")
    (folders["keras_denoiser"] / "recipe.yaml").write_text("task: denoising\nepochs: 3\n")
    argv = [a.format(**folders) for a in argv]
    assert says in refused(_module_main(module), argv, capsys)


KERAS_RESUME_CASES = {
    "not a run": (["--resume", "/nonexistent/run"], "nothing to resume"),
    "a recipe beside it": (["--resume", "{run}", "--config", "configs/mnist_improved.yaml"], "--config: a resumed run keeps its own"),
    "a finished run": (["--resume", "{finished}"], "finished its 3 epochs"),
    "a finished run, fewer epochs": (["--resume", "{finished}", "--epochs", "2"], "--epochs N with N > 3"),
    "no finished epoch yet": (["--resume", "{run}"], "nothing to resume"),
}


@pytest.mark.parametrize("module", KERAS_TINY)
@pytest.mark.parametrize("argv,says", KERAS_RESUME_CASES.values(), ids=KERAS_RESUME_CASES.keys())
def test_keras_resume_refusals(module, argv, says, tmp_path, capsys):
    run_dir, finished = tmp_path / "run", tmp_path / "finished"
    for folder in (run_dir, finished):
        folder.mkdir()
        (folder / "recipe.yaml").write_text("epochs: 3\nseed: 0\n")
    (finished / "metrics.json").write_text(json.dumps({"epochs": 3, "finished": True}))
    argv = [a.format(run=run_dir, finished=finished) for a in argv]
    assert says in refused(_module_main(module), argv, capsys)
    assert not (finished / "metrics.epochs_3.json").exists()


@pytest.mark.slow
def test_the_record_times_the_fit_not_the_tested_checkpoint(tmp_path):
    """Testing the best checkpoint restores the callbacks' state saved with it: the record must still hold every
    epoch's timing and the fit's own training time (not the fit's time plus the checkpoint's)."""
    from lightning_impl.train import main

    import time

    start = time.perf_counter()
    # The "best" checkpoint by the highest validation loss: the first epoch's, whose saved timer holds one epoch.
    metrics = main([*TINY, "--checkpoint.monitor", "val_loss", "--checkpoint.mode", "max",
                    "--trainer.logger.init_args.save_dir", str(tmp_path)])
    wall = time.perf_counter() - start
    assert "epoch=0" in metrics["best_checkpoint"]
    assert len(metrics["epoch_time_s"]) == 3
    assert sum(metrics["epoch_time_s"]) <= metrics["train_s"] < wall


@pytest.mark.slow
def test_a_finished_run_is_resumed_only_to_train_on(tmp_path, capsys):
    """--resume of a finished run would test again and overwrite its record: refused, unless it trains on."""
    from lightning_impl.train import main

    main([*TINY, "--trainer.max_epochs", "1", "--trainer.logger.init_args.save_dir", str(tmp_path)])
    (run_dir,) = tmp_path.glob("*/version_*")
    record = (run_dir / "metrics.json").read_text()
    line = refused(main, ["--resume", str(run_dir)], capsys)
    assert "finished its 1 epochs" in line and "--trainer.max_epochs N with N > 1" in line
    assert (run_dir / "metrics.json").read_text() == record
    main(["--resume", str(run_dir), "--trainer.max_epochs", "2"])
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 2
    assert (run_dir / "metrics.epochs_1.json").read_text() == record  # the earlier record is kept
    assert sorted(p.name for p in tmp_path.glob("*/version_*")) == [run_dir.name]


@pytest.mark.slow
def test_runs_started_together_never_share_a_folder(tmp_path):
    """Three Lightning runs started at once into one runs folder: three folders, three finished records."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    module, argv = ENTRY["classifier"]
    procs = [subprocess.Popen([sys.executable, "-m", module, *argv, "--trainer.max_epochs", "1",
                               "--trainer.logger.init_args.save_dir", str(tmp_path)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-1500:] for _, err in outs]
    folders = {Path(out.strip().splitlines()[-1]) for out, _ in outs}
    assert len(folders) == 3 and all((f / "metrics.json").is_file() for f in folders)


def test_a_refused_run_leaves_no_folder_behind(tmp_path, capsys):
    from lightning_impl.train import main

    refused(main, ["--trainer.max_epochs", "0", "--trainer.logger.init_args.save_dir", str(tmp_path)], capsys)
    assert not list(tmp_path.glob("*/version_*"))


def test_a_damaged_part_record_is_named_and_that_part_runs_again(tmp_path, capsys):
    from experiments.practical import _part_record

    path = tmp_path / "specified_lightning_seed0.json"
    path.write_text('{"name": "specified_lightning_seed0", "key": ')  # cut short by a kill of an older version
    assert _part_record(path) is None
    err = capsys.readouterr().err
    assert str(path) in err and "runs again" in err
    path.write_text("[1, 2]")  # valid JSON, not a record
    assert _part_record(path) is None
    assert _part_record(tmp_path / "absent.json") is None
