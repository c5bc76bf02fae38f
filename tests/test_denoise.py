"""Denoising: models and their Keras twins, noise, metrics, classical tuning, the quick experiment."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml
from torch import nn

import keras_ref  # noqa: F401  (torch backend before keras)
import keras
from keras_ref.models.denoising import denoising_ae, unet_dae
from core import classical_denoisers as classical
from core import configs
from experiments import denoising as denoise
from core.image_quality import score
from lightning_impl.tasks.denoiser import Denoiser
from lightning_impl.models.denoising import DenoisingAE, SameConvTranspose2d, UNetDAE
from core.noise import add_noise, fixed_noisy_copy
from lightning_impl.data.noise import NoisyDataModule


# ----------------------------------------------------------------------------- models and Keras twins


def torch_leaves(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if name and not list(m.children())}


def copy_keras_to_torch(kmodel: keras.Model, tmodel: nn.Module) -> None:
    """A minimal weight transfer for these layer types (the parity package has the general one)."""
    with torch.no_grad():
        for name, module in torch_leaves(tmodel).items():
            weights = [np.asarray(keras.ops.convert_to_numpy(w)) for w in kmodel.get_layer(name).weights]
            if isinstance(module, nn.ConvTranspose2d):  # Keras (kh, kw, out, in) -> torch (in, out, kh, kw)
                module.weight.copy_(torch.from_numpy(weights[0].transpose(3, 2, 0, 1)))
            elif isinstance(module, nn.Conv2d):  # Keras (kh, kw, in, out) -> torch (out, in, kh, kw)
                module.weight.copy_(torch.from_numpy(weights[0].transpose(3, 2, 0, 1)))
            elif isinstance(module, nn.BatchNorm2d):
                gamma, beta, mean, var = weights
                module.weight.copy_(torch.from_numpy(gamma)), module.bias.copy_(torch.from_numpy(beta))
                module.running_mean.copy_(torch.from_numpy(mean)), module.running_var.copy_(torch.from_numpy(var))
                continue
            else:
                continue
            if module.bias is not None:
                module.bias.copy_(torch.from_numpy(weights[1]))


def randomise_keras(kmodel: keras.Model, seed: int = 0) -> None:
    """Non-trivial weights everywhere, BatchNorm statistics and the zero-initialised head included."""
    rng = np.random.default_rng(seed)
    for w in kmodel.weights:
        shape = tuple(w.shape)
        value = rng.uniform(0.5, 1.5, shape) if "variance" in w.path else rng.normal(0, 0.2, shape)
        w.assign(value.astype("float32"))


@pytest.mark.parametrize("kernel,stride", [(3, 2), (3, 1), (4, 2), (5, 2), (2, 2)])
def test_same_conv_transpose_matches_keras(kernel, stride):
    x = np.random.default_rng(0).random((2, 5, 7, 3)).astype("float32")  # odd, non-square on purpose
    layer = keras.layers.Conv2DTranspose(4, kernel, strides=stride, padding="same")
    expected = keras.ops.convert_to_numpy(layer(x))
    kernel_w, bias = (keras.ops.convert_to_numpy(w) for w in layer.weights)
    ours = SameConvTranspose2d(3, 4, kernel, stride)
    with torch.no_grad():
        ours.weight.copy_(torch.from_numpy(kernel_w.transpose(3, 2, 0, 1))), ours.bias.copy_(torch.from_numpy(bias))
        got = ours(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    assert got.shape == expected.shape == (2, 5 * stride, 7 * stride, 4)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_torch_symmetric_padding_is_shifted_against_keras():
    # Why SameConvTranspose2d exists: same shape, different numbers.
    x = np.random.default_rng(1).random((1, 7, 7, 2)).astype("float32")
    layer = keras.layers.Conv2DTranspose(2, 3, strides=2, padding="same", use_bias=False)
    expected = keras.ops.convert_to_numpy(layer(x))
    plain = nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1, output_padding=1, bias=False)
    with torch.no_grad():
        plain.weight.copy_(torch.from_numpy(keras.ops.convert_to_numpy(layer.kernel).transpose(3, 2, 0, 1)))
        got = plain(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() > 0.1


def test_same_conv_transpose_rejects_kernel_smaller_than_stride():
    with pytest.raises(ValueError, match="kernel_size >= stride"):
        SameConvTranspose2d(1, 1, kernel_size=1, stride=2)


@pytest.mark.parametrize(
    "torch_factory,keras_factory,parameters",
    [(DenoisingAE, denoising_ae, 28_353), (UNetDAE, unet_dae, None)],
    ids=["reference", "unet"],
)
def test_keras_twin_has_same_layers_and_outputs(torch_factory, keras_factory, parameters):
    tmodel, kmodel = torch_factory().eval(), keras_factory()
    leaves = list(torch_leaves(tmodel))
    keras_names = [layer.name for layer in kmodel.layers]
    assert [n for n in keras_names if n in leaves] == leaves  # every torch leaf, same order
    n_torch = sum(p.numel() for p in tmodel.parameters())
    assert n_torch == kmodel.count_params() - sum(  # Keras counts BatchNorm statistics as parameters
        int(np.prod(w.shape)) for w in kmodel.non_trainable_weights
    )
    if parameters is not None:
        assert n_torch == parameters
    randomise_keras(kmodel)
    copy_keras_to_torch(kmodel, tmodel)
    x = np.random.default_rng(2).random((4, 28, 28, 1)).astype("float32")
    expected = keras.ops.convert_to_numpy(kmodel(x, training=False))
    with torch.no_grad():
        got = tmodel(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_unet_starts_as_identity_and_reference_pair_is_registered():
    x = torch.rand(2, 1, 28, 28) * 0.9 + 0.05
    torch.testing.assert_close(UNetDAE().eval()(x), x, atol=1e-5, rtol=0)
    from parity.registry import all_pairs

    pair = all_pairs()["denoising_ae"]
    assert (pair.task, pair.dataset, pair.input_shape) == ("denoising", "fashion_mnist", (1, 28, 28))


# ----------------------------------------------------------------------------- noise


def test_noise_is_clipped_and_has_the_requested_std():
    mid = torch.full((200, 1, 28, 28), 0.5)
    noisy = add_noise(mid, 0.1, torch.Generator().manual_seed(0))
    assert abs(float((noisy - mid).std()) - 0.1) < 0.002  # 0.5 +- 5 sigma: clipping never bites
    dark = add_noise(torch.zeros(50, 1, 28, 28), 0.5, torch.Generator().manual_seed(0))
    assert dark.min() == 0 and dark.max() <= 1 and (dark == 0).float().mean() > 0.45  # half the draws clip
    per_image = add_noise(mid[:2], torch.tensor([0.0, 0.2]), torch.Generator().manual_seed(0))
    assert torch.equal(per_image[0], mid[0]) and not torch.equal(per_image[1], mid[1])


def test_eval_noise_is_fixed_and_seeded():
    clean = torch.rand(8, 1, 28, 28)
    a, b = fixed_noisy_copy(clean, 0.3, seed=5), fixed_noisy_copy(clean, 0.3, seed=5)
    assert torch.equal(a, b) and not torch.equal(a, fixed_noisy_copy(clean, 0.3, seed=6))
    blind = fixed_noisy_copy(torch.full((400, 1, 8, 8), 0.5), (0.1, 0.3), seed=5)
    stds = (blind - 0.5).flatten(1).std(dim=1)
    assert 0.07 < float(stds.min()) and float(stds.max()) < 0.35 and float(stds.max() - stds.min()) > 0.1


@pytest.fixture(scope="module")
def datamodules():
    make = lambda: NoisyDataModule(sigma=0.2, batch_size=16, eval_batch_size=32, download=False,  # noqa: E731
                                   train_limit=64, val_limit=64, test_limit=64)
    dms = make(), make()
    for dm in dms:
        dm.prepare_data(), dm.setup()
    return dms


def test_validation_and_test_noise_identical_across_passes_and_instances(datamodules):
    first, second = datamodules
    for split in ("val", "test"):
        passes = [[b[0] for b in getattr(dm, f"{split}_dataloader")()] for dm in (first, first, second)]
        for batches in passes[1:]:
            assert all(torch.equal(x, y) for x, y in zip(passes[0], batches))
    assert not torch.equal(first.val_set.noisy, first.test_set.noisy[: len(first.val_set)])


def test_training_noise_is_fresh_for_every_batch(datamodules):
    dm = datamodules[0]
    dm.trainer = SimpleNamespace(training=True)
    try:
        batch = dm.train_set.clean[:16]
        (noisy1, clean1), (noisy2, clean2) = (dm.on_after_batch_transfer(batch, 0) for _ in range(2))
    finally:
        dm.trainer = None
    assert torch.equal(clean1, clean2) and clean1.max() <= 1 and clean1.dtype == torch.float32
    assert not torch.equal(noisy1, noisy2)
    assert abs(float((noisy1 - clean1)[(clean1 > 0.3) & (clean1 < 0.7)].std()) - 0.2) < 0.02


def test_bad_sigma_is_refused():
    with pytest.raises(ValueError, match="sigma"):
        NoisyDataModule(sigma=1.5)
    with pytest.raises(ValueError, match="range"):
        NoisyDataModule(sigma=(0.5, 0.1))


# ----------------------------------------------------------------------------- metrics and the task


def test_psnr_and_ssim_on_a_known_case():
    clean = torch.full((2, 1, 28, 28), 0.5)
    restored = clean.clone()
    restored[0] += 0.1  # MSE 1e-2 -> 20 dB
    restored[1] += 0.01  # MSE 1e-4 -> 40 dB
    result = score(restored, clean)
    assert result["psnr"] == pytest.approx(30.0, abs=1e-3)  # mean of per-image PSNRs, not pooled (22.97)
    assert score(clean, clean)["ssim"] == pytest.approx(1.0, abs=1e-6)
    assert score(clean + 0.7, clean)["psnr"] == pytest.approx(score(torch.ones_like(clean), clean)["psnr"])  # clipped


def test_per_image_psnr_averages_to_the_score_and_the_paired_test_sees_a_small_consistent_gain():
    from core.image_quality import paired_psnr, psnr_per_image

    g = torch.Generator().manual_seed(0)
    clean = torch.rand(200, 1, 28, 28, generator=g)
    noise = torch.randn(200, 1, 28, 28, generator=g) * torch.linspace(0.02, 0.3, 200)[:, None, None, None]
    worse, better = clean + noise, clean + 0.97 * noise  # every image 3 % less noise: a consistent gain
    a, b = psnr_per_image(better, clean), psnr_per_image(worse, clean)
    assert float(a.mean()) == pytest.approx(score(better, clean)["psnr"], abs=1e-4)
    diff, p = paired_psnr(a, b)
    # the per-image PSNRs spread over ~20 dB, the gain is ~0.2 dB: unpaired it would drown, paired it stands out
    assert 0.1 < diff < 0.4 and p < 1e-10 and float(b.std()) > 10 * diff
    assert paired_psnr(b, b) == (0.0, 1.0)
    other = psnr_per_image(clean + noise[torch.randperm(200, generator=g)], clean)  # the same noise, other images
    assert paired_psnr(other, b)[1] > 1e-3
    with pytest.raises(ValueError):
        paired_psnr(a, b[:10])


@pytest.mark.slow
def test_denoiser_losses_and_a_training_step_lowers_the_loss():
    with pytest.raises(ValueError, match="unknown loss"):
        Denoiser(loss="l1")
    torch.manual_seed(0)
    clean = torch.rand(8, 1, 28, 28)
    noisy = add_noise(clean, 0.2)
    # log_mse is the reported metric itself: -mean per-image PSNR / 10 (the 1e-8 floor aside).
    log_mse = Denoiser(loss="log_mse").loss_fn(noisy.clamp(0, 1), clean)
    assert float(log_mse) == pytest.approx(-score(noisy, clean, ssim=False)["psnr"] / 10, abs=1e-4)
    for loss in ("mse", "bce", "log_mse"):
        model = Denoiser(UNetDAE(widths=(4, 4, 4)), loss=loss)
        model.log = lambda *a, **k: None
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        losses = []
        for _ in range(8):
            value = model.training_step((noisy, clean), 0)
            optimizer.zero_grad(), value.backward(), optimizer.step()
            losses.append(float(value))
        assert losses[-1] < losses[0]


# ----------------------------------------------------------------------------- classical filters


def test_tune_picks_the_grid_point_with_the_best_psnr():
    clean = np.tile(np.linspace(0, 1, 28, dtype=np.float32), (6, 28, 1))
    noisy = fixed_noisy_copy(torch.from_numpy(clean), 0.2, seed=0).numpy()
    method = classical.METHODS["gaussian"]
    params, best = classical.tune(method, clean, noisy, 0.2, n_jobs=1)
    every = [score(torch.from_numpy(method.fn(noisy, 0.2, **p)), torch.from_numpy(clean), ssim=False)["psnr"] for p in method.grid]
    assert best == pytest.approx(max(every)) and params == method.grid[int(np.argmax(every))]
    assert best > score(torch.from_numpy(noisy), torch.from_numpy(clean))["psnr"] + 3


def test_bm3d_tuned_on_training_images_beats_the_noisy_input(datamodules):
    clean, noisy = denoise.tuning_pairs(datamodules[0], 0.2, 4)
    method = classical.METHODS["bm3d"]
    assert method.cost == "per-image"
    params, best = classical.tune(method, clean, noisy, 0.2, n_jobs=1)
    assert params in method.grid
    assert best > score(torch.from_numpy(noisy), torch.from_numpy(clean), ssim=False)["psnr"] + 2
    restored = classical.apply(method, noisy, 0.2, params, n_jobs=1)
    assert restored.shape == noisy.shape and restored.dtype == np.float32


@pytest.mark.slow
def test_classical_tuning_never_reads_the_test_set(datamodules):
    dm = datamodules[0]

    class Forbidden:
        def __getattr__(self, name):
            raise AssertionError(f"classical tuning read the test set ({name})")

    saved = dm.source.test_set
    dm.source.test_set = Forbidden()
    try:
        tuned = denoise.tune_classical(dm, denoise.load_study("smoke"), n_jobs=1)
    finally:
        dm.source.test_set = saved
    assert set(tuned) == set(denoise.SIGMAS) and set(tuned[0.1]) == set(classical.METHODS)


@pytest.mark.slow
def test_apply_in_parallel_equals_serial():
    noisy = np.random.default_rng(0).random((70, 28, 28)).astype(np.float32)
    method, params = classical.METHODS["tv"], {"weight": 0.1}
    np.testing.assert_allclose(classical.apply(method, noisy, 0.2, params, n_jobs=2),
                               classical.apply(method, noisy, 0.2, params, n_jobs=1), atol=1e-6)


# ----------------------------------------------------------------------------- the experiment, smoke budget


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The smoke-budget experiment, its networks trained two at a time in worker processes."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run_dir = denoise.main(["--budget", "smoke", "--runs-dir", str(tmp_path_factory.mktemp("smoke")), "--jobs", "2"])
    return run_dir, out.getvalue()


def read_rows(run_dir) -> dict:
    with open(run_dir / "results.csv") as f:
        return {(r["method"], float(r["sigma"])): r for r in csv.DictReader(f)}


@pytest.mark.slow
def test_quick_experiment_writes_table_and_figures(quick_run):
    run_dir, stdout = quick_run
    assert stdout.strip().splitlines()[-1] == str(run_dir.resolve())
    assert run_dir.parent.name == "denoise" and run_dir.name.startswith("version_")
    cell = read_rows(run_dir)
    methods = {m for m, _ in cell}
    assert methods == {*classical.METHODS, *denoise.LABELS.values(), *(f"{v} (blind)" for v in denoise.LABELS.values())}
    assert len(cell) == len(methods) * len(denoise.SIGMAS)
    for sigma, expected in zip(denoise.SIGMAS, (21.6, 16.0, 12.8, 9.3)):  # the noisy-input figures
        assert float(cell["noisy input", sigma]["psnr"]) == pytest.approx(expected, abs=0.3)
        best = max(float(cell[m, sigma]["psnr"]) for m in classical.METHODS if m != "noisy input")
        assert best > float(cell["noisy input", sigma]["psnr"]) + 0.5
    assert json.loads(cell["tv", 0.3]["params"])["weight"] > 0
    assert float(cell["reference AE", 0.1]["train_s"]) > 0
    table = (run_dir / "results.md").read_text()
    assert "| improved U-Net |" in table and "σ=0.5" in table
    paired = json.loads((run_dir / "results.json").read_text())["paired"]  # the report's tests, one per question
    assert {(t["a"], t["sigma"]) for t in paired} == {(denoise.LABELS[a], s) for a in denoise.LABELS for s in denoise.SIGMAS}
    assert all(0.0 <= t["p"] <= 1.0 and t["n"] == int(cell["noisy input", 0.1]["n_test"]) for t in paired)
    for name in ["metrics_vs_sigma.png", *(f"grid_sigma{s:g}.png" for s in denoise.SIGMAS)]:
        assert (run_dir / name).stat().st_size > 1000
    # every network was trained (by a worker) through the entry point: a finished run folder with its best checkpoint
    finished = list((run_dir / "models").glob("*/version_0/metrics.json"))
    assert len(finished) == 2 * (len(denoise.SIGMAS) + 1)
    for record in finished:
        metrics = json.loads(record.read_text())
        assert metrics["finished"] and Path(metrics["best_checkpoint"]).is_file()


@pytest.mark.slow
def test_resume_trains_only_what_is_missing_and_reuses_the_tuning(quick_run, tmp_path, monkeypatch):
    original, _ = quick_run
    run_dir = tmp_path / "version_0"
    shutil.copytree(original, run_dir)
    (run_dir / "models" / "improved_sigma0.3" / "version_0" / "metrics.json").unlink()  # as if interrupted while training it
    trained = []
    train = denoise.train_network
    monkeypatch.setattr(denoise, "train_network", lambda arch, sigma, *a, **k: trained.append((arch, sigma)) or train(arch, sigma, *a, **k))
    monkeypatch.setattr(classical, "tune", lambda *a, **k: pytest.fail("the stored tuning must be reused"))
    with contextlib.redirect_stdout(io.StringIO()):
        assert denoise.main(["--resume", str(run_dir), "--jobs", "1"]) == run_dir  # the folder's budget: smoke
    assert trained == [("improved", 0.3)]
    before, after = read_rows(original), read_rows(run_dir)
    assert before.keys() == after.keys()
    for key in before:  # everything not retrained scores exactly as before: same weights, same inputs
        if key != ("improved U-Net", 0.3):
            assert after[key]["psnr"] == before[key]["psnr"], key


@pytest.mark.slow
def test_resume_refuses_another_budget_or_a_foreign_folder(quick_run, tmp_path, capsys):
    run_dir, _ = quick_run
    with pytest.raises(SystemExit) as exit:
        denoise.main(["--budget", "full", "--resume", str(run_dir)])
    assert exit.value.code == 2 and re.search("started with budget 'smoke'.*overlays", capsys.readouterr().err)
    with pytest.raises(SystemExit):
        denoise.main(["--budget", "smoke", "--resume", str(tmp_path)])
    assert "no budget.json" in capsys.readouterr().err


@pytest.mark.slow
def test_budgets_train_the_recipes_they_name(tmp_path):
    """The full budget trains each network on its recipe as configs/ states it (the U-Net at 48-96-192, the one
    measured in docs/denoise.md), through the entry point; the smaller budgets are overlays on it."""
    full, smoke = denoise.load_study("full"), denoise.load_study("smoke")
    unet = configs.load("denoise_unet.yaml")
    assert full.config("improved")["model"] == unet["model"] and full.config("improved")["trainer"]["max_epochs"] == 5
    assert full.config("reference")["model"]["net"] == configs.load("denoise_reference.yaml")["model"]["net"]
    assert smoke.config("improved")["model"]["net"]["init_args"]["widths"] == [32, 64, 128]
    model, seconds = denoise.train_network("improved", 0.1, full, tmp_path, None,
                                           overlay={"trainer": {"max_epochs": 1}, "data": {"train_limit": 32, "val_limit": 32, "test_limit": 32}})
    assert sum(p.numel() for p in model.net.parameters()) == 1_163_761 and seconds > 0
    config = yaml.safe_load(next((tmp_path / "models" / "improved_sigma0.1").glob("version_*/config.yaml")).read_text())
    optimizer = config["model"]["optimizer"]  # as the entry point saved it: every argument, the recipe's among them
    assert optimizer["class_path"] == unet["model"]["optimizer"]["class_path"]
    assert optimizer["init_args"]["lr"] == unet["model"]["optimizer"]["init_args"]["lr"]
    assert config["model"]["schedule"] == unet["model"]["schedule"]