"""Training a denoiser in both frameworks: the two CLIs, the Keras recipe translation and noise, check 5."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import keras_ref  # noqa: F401  (torch backend before keras)
import keras
import parity.accuracy as accuracy
from keras_ref import train_denoiser as keras_denoise
from keras_ref.recipes import denoiser_recipe, make_optimizer
from lightning_impl import train_denoiser
from lightning_impl.tasks.denoiser import LOSSES
from lightning_impl.data.noise import NoisyDataModule
from lightning_impl.tasks.schedules import warmup_cosine
from parity.registry import all_pairs

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
REFERENCE, UNET = str(CONFIGS / "denoise_reference.yaml"), str(CONFIGS / "denoise_unet.yaml")
TINY = {"train": 128, "val": 64, "test": 64}  # 2 steps of 64 per epoch
# What both entry points must write, with the same meaning (the parity check and the docs read these).
SHARED_KEYS = {"framework", "dataset", "model", "sigma", "eval_sigma", "loss", "parameters", "seed", "epochs",
               "train_images", "test_images", "best_checkpoint", "best_val_psnr", "test_loss", "test_psnr",
               "test_ssim", "train_s", "epoch_time_s", "train_images_per_s"}


def last_line(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def reference_data():
    dm = NoisyDataModule(sigma=0.1, download=False, val_limit=TINY["val"], test_limit=TINY["test"])
    dm.prepare_data(), dm.setup()
    return dm


# ----------------------------------------------------------------------------- the two entry points


@pytest.mark.slow
def test_lightning_cli_trains_and_writes_metrics(tmp_path, capsys):
    metrics = train_denoiser.main([
        "--config", REFERENCE, "--data.sigma", "0.1", "--trainer.max_epochs", "1", "--seed_everything", "3",
        "--data.batch_size", "64", *(f for s, n in TINY.items() for f in (f"--data.{s}_limit", str(n))),
        "--trainer.logger.init_args.save_dir", str(tmp_path),
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
    ])
    run = Path(last_line(capsys))
    assert run == (tmp_path / "denoise_reference" / "version_0").resolve() and metrics.pop("run_dir") == str(run)
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert SHARED_KEYS <= set(metrics)
    assert (metrics["framework"], metrics["model"], metrics["parameters"]) == ("lightning", "DenoisingAE", 28_353)
    assert (metrics["sigma"], metrics["seed"], metrics["epochs"], metrics["loss"]) == (0.1, 3, 1, "mse")
    assert (metrics["train_images"], metrics["test_images"]) == (TINY["train"], TINY["test"])
    assert 0 < metrics["test_psnr"] < 60 and 0 < metrics["test_ssim"] <= 1 and metrics["train_s"] > 0
    assert Path(metrics["best_checkpoint"]).is_file() and "val_psnr" in Path(metrics["best_checkpoint"]).name
    assert "sigma: 0.1" in (run / "config.yaml").read_text()  # the command-line override was recorded


@pytest.mark.slow
def test_keras_trains_on_the_lightning_data_and_writes_the_same_metrics(tmp_path, capsys, monkeypatch, reference_data):
    seen = []  # every batch of images the Keras trainer asks its model to restore: validation, then test
    predict = keras_denoise.predict
    monkeypatch.setattr(keras_denoise, "predict", lambda model, noisy, *a: seen.append(noisy.clone()) or predict(model, noisy, *a))
    metrics = keras_denoise.main([
        "--config", REFERENCE, "--sigma", "0.1", "--epochs", "2", "--seed", "3", "--batch-size", "64",
        "--limit-train", str(TINY["train"]), "--limit-val", str(TINY["val"]), "--limit-test", str(TINY["test"]),
        "--runs-dir", str(tmp_path), "--quiet",
    ])
    run = Path(last_line(capsys))
    assert run == (tmp_path / "denoise_reference_keras" / "version_0").resolve()
    assert json.loads((run / "metrics.json").read_text()) == metrics
    assert SHARED_KEYS <= set(metrics)
    assert (metrics["framework"], metrics["model"], metrics["parameters"]) == ("keras", "DenoisingAE", 28_353)
    assert (metrics["sigma"], metrics["seed"], metrics["epochs"], metrics["loss"]) == (0.1, 3, 2, "mse")
    assert (metrics["train_images"], metrics["test_images"]) == (TINY["train"], TINY["test"])
    assert 0 < metrics["test_psnr"] < 60 and 0 < metrics["test_ssim"] <= 1 and Path(metrics["best_checkpoint"]).is_file()
    assert len(np.loadtxt(run / "metrics.csv", delimiter=",", skiprows=1, ndmin=2)) == 2  # one row per epoch
    # Validated and tested on exactly the fixed noisy copies the Lightning DataModule serves, every epoch.
    val_epoch1, val_epoch2, test = seen
    assert torch.equal(val_epoch1, reference_data.val_set.noisy) and torch.equal(val_epoch2, val_epoch1)
    assert torch.equal(test, reference_data.test_set.noisy)


def test_keras_refuses_a_bad_recipe_with_a_message(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        keras_denoise.main(["--config", REFERENCE, "--sigma", "1.5", "--runs-dir", str(tmp_path)])
    assert exit.value.code == 2 and "sigma" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  net:\n    class_path: torch.nn.Identity\n")
    with pytest.raises(SystemExit):
        keras_denoise.main(["--config", str(bad), "--runs-dir", str(tmp_path)])
    assert "model.net: no Keras twin" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the Keras side of the recipe


def test_fresh_noise_every_batch_seeded_and_reshuffled(reference_data):
    clean = reference_data.train_set.clean[:96]
    data = keras_denoise.FreshNoise(clean, 0.2, batch_size=32, seed=0)
    assert len(data) == 3
    (noisy1, clean1), (noisy2, clean2) = data[0], data[0]
    assert noisy1.shape == clean1.shape == (32, 28, 28, 1) and noisy1.dtype == np.float32
    assert np.array_equal(clean1, clean2) and not np.array_equal(noisy1, noisy2)  # same images, new noise
    mid = (clean1 > 0.3) & (clean1 < 0.7)  # far from the clipping bounds
    assert abs(float((noisy1 - clean1)[mid].std()) - 0.2) < 0.02
    twin = keras_denoise.FreshNoise(clean, 0.2, batch_size=32, seed=0)
    assert np.array_equal(twin[0][0], noisy1)  # a seed fixes the draws
    data.set_epoch(1)
    assert not np.array_equal(data[0][1], clean1)  # a new order every epoch
    data.set_epoch(0)
    assert np.array_equal(data[0][0], noisy1)  # fixed by (seed, epoch) alone: a resumed run draws the same
    blind = keras_denoise.FreshNoise(torch.full((64, 1, 8, 8), 128, dtype=torch.uint8), [0.05, 0.5], 64, seed=0)
    stds = (blind[0][0] - 128 / 255).reshape(64, -1).std(axis=1)
    assert stds.max() - stds.min() > 0.2  # one sigma per image


def test_recipe_translation_reads_the_lightning_config():
    recipe = denoiser_recipe(UNET)
    assert recipe["net"] == "UNetDAE" and recipe["net_args"] == {"widths": [48, 96, 192]}  # in_channels: from the data
    assert (recipe["epochs"], recipe["seed"], recipe["loss"], recipe["warmup_fraction"]) == (5, 0, "mse", 0.05)
    assert recipe["optimizer"]["init_args"]["lr"] == 0.003 and recipe["data"]["batch_size"] == 32
    assert (recipe["name"], recipe["data"]["sigma"]) == ("denoise_unet_keras", 0.3)
    # An empty config is the default recipe, the same one lightning_impl.train_denoiser starts from.
    bare = denoiser_recipe({})
    assert bare == denoiser_recipe(REFERENCE)
    assert (bare["net"], bare["loss"], bare["schedule"], bare["warmup_fraction"]) == ("DenoisingAE", "mse", "warmup_cosine", 0.05)
    assert bare["data"]["sigma"] == 0.3 and bare["data"]["dataset"] == "fashion_mnist"


def test_keras_schedule_and_losses_are_the_torch_ones():
    recipe = denoiser_recipe(REFERENCE)
    total = 200
    optimizer = make_optimizer(recipe["optimizer"], total, recipe["schedule"], recipe["warmup_fraction"])
    for step in (0, 5, 10, 11, 100, 199):  # warm-up to step 10, then cosine decay
        optimizer.iterations.assign(step)
        assert float(optimizer.learning_rate) == pytest.approx(3e-3 * warmup_cosine(step, total, 0.05), rel=1e-5, abs=1e-10)
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(4, 1, 28, 28, generator=g)
    restored = torch.rand(4, 1, 28, 28, generator=g) * 1.4 - 0.2  # outside [0, 1] too: bce's clamp matters
    assert set(keras_denoise.LOSSES) == set(LOSSES)
    for name, torch_loss in LOSSES.items():
        got = keras.ops.convert_to_numpy(keras_denoise.LOSSES[name](keras_denoise.nhwc(clean), keras_denoise.nhwc(restored)))
        assert float(got) == pytest.approx(float(torch_loss(restored, clean)), rel=1e-5), name


# ----------------------------------------------------------------------------- check 5 for the denoising pair


def test_check_5_logic_for_a_denoising_pair(monkeypatch):
    pair = all_pairs()["denoising_ae"]
    assert pair.score == "test_psnr" and pair.accuracy_band[0] < 19.29 < pair.accuracy_band[1]
    calls = []

    def canned(pair, fw, seeds, epochs, runs_dir, verbose, quick=None):
        calls.append((fw, accuracy.budget_args(accuracy.FRAMEWORKS[pair.task][fw], quick)))
        return [{"test_psnr": v} for v in {"lightning": [19.3, 19.5], "keras": [19.2, 19.4]}[fw]]

    monkeypatch.setattr(accuracy, "train_runs", canned)
    rows = accuracy.check_accuracy(pair, seeds=2)
    assert [r.passed for r in rows] == [True, True, True, True]  # the Welch row; no McNemar, no HOG+SVM: not a classifier
    assert rows[0].value.startswith("19.40 dB") and rows[2].value == "0.10 dB" and rows[2].bound == "< 0.50 dB"
    assert calls == [("lightning", []), ("keras", [])]  # the full recipe: no cuts
    wide = dataclasses.replace(pair, accuracy_margin=0.05)
    assert accuracy.check_accuracy(wide, seeds=2)[2].passed is False
    low = dataclasses.replace(pair, accuracy_band=(19.35, 20.0))  # keras mean 19.30: out
    assert [r.passed for r in accuracy.check_accuracy(low, seeds=2)][:2] == [True, False]
    calls.clear()
    accuracy.check_accuracy(pair, quick=True)
    lightning_args, keras_args = (dict(zip(a[::2], a[1::2])) for _, a in calls)
    assert lightning_args == {"--data.train_limit": "4096", "--data.val_limit": "500", "--data.test_limit": "1000",
                              "--data.batch_size": "32"}
    assert keras_args == {"--limit-train": "4096", "--limit-val": "500", "--limit-test": "1000", "--batch-size": "32"}


@pytest.mark.slow
def test_check_5_quick_budget_for_the_denoising_pair(tmp_path):
    """CI budget: one seed, one epoch of 4,096 images in each framework, the pair's quick band and margin."""
    rows = accuracy.check_accuracy(all_pairs()["denoising_ae"], quick=True, runs_dir=str(tmp_path))
    assert [r.passed for r in rows] == [True, True, True, None], [(r.check, r.value, r.bound) for r in rows]  # 1 seed: no Welch
