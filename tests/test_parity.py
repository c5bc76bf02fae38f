"""The parity checks pass for every registered pair and for small pairs of every supported layer type, and
each check fails when a mistake is planted (transposed kernel, flatten order, missing bias, BatchNorm
epsilon/momentum, BatchNorm's training path, loss reduction, learning rate, gradient)."""

from __future__ import annotations

import dataclasses
import json

import keras_ref  # noqa: F401  (torch backend before keras)
import keras
import numpy as np
import pytest
import torch
from keras import layers
from torch import nn
from torch.nn import functional as F

import parity.accuracy as accuracy
import parity.checks as checks
import parity.transfer as transfer
from lightning_impl.models import SpecifiedCNN
from parity.__main__ import main
from parity.registry import PAIRS, ModelPair, all_pairs

# --- small synthetic pairs covering the layer types the registered models use ----------------------------


class BNNet(nn.Sequential):
    """Conv (no bias) + BatchNorm2d + pool + Dropout + Flatten + Linear + BatchNorm1d + Linear."""

    def __init__(self, eps: float = 1e-5, momentum: float = 0.1, p: float = 0.25, bn_after_flatten: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=eps, momentum=momentum)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.drop1 = nn.Dropout(p)
        self.flatten = nn.Flatten()
        if bn_after_flatten:  # BatchNorm1d on (C, H, W)-ordered features: its statistics need the flatten permutation
            self.bn_flat = nn.BatchNorm1d(8 * 14 * 14, eps=eps, momentum=momentum)
        self.fc1 = nn.Linear(8 * 14 * 14, 32)
        self.bn2 = nn.BatchNorm1d(32, eps=eps, momentum=momentum)
        self.relu2 = nn.ReLU()
        self.fc2 = nn.Linear(32, 10)


def bn_keras(eps: float = 1e-5, momentum: float = 0.9, rate: float = 0.25, bn_after_flatten: bool = False) -> keras.Model:
    bn = lambda name: layers.BatchNormalization(epsilon=eps, momentum=momentum, name=name)  # noqa: E731
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv1"),
        bn("bn1"),
        layers.ReLU(name="relu1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Dropout(rate, name="drop1"),
        layers.Flatten(name="flatten"),
        *([bn("bn_flat")] if bn_after_flatten else []),
        layers.Dense(32, name="fc1"),
        bn("bn2"),
        layers.ReLU(name="relu2"),
        layers.Dense(10, name="fc2"),
    ])


class KerasSameConvTranspose2d(nn.ConvTranspose2d):
    """Keras' Conv2DTranspose(k=3, strides=2, padding='same'): the full transposed convolution with the
    last row and column cropped (Keras crops the odd excess on the right/bottom)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x)[..., :-1, :-1]


class TinyAE(nn.Sequential):
    def __init__(self, up: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.up1 = up if up is not None else KerasSameConvTranspose2d(8, 8, 3, stride=2)
        self.relu2 = nn.ReLU()
        self.out = nn.Conv2d(8, 1, 3, padding=1)
        self.sigmoid = nn.Sigmoid()


def ae_keras() -> keras.Model:
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(8, 3, padding="same", name="conv1"),
        layers.ReLU(name="relu1"),
        layers.MaxPooling2D(2, name="pool1"),
        layers.Conv2DTranspose(8, 3, strides=2, padding="same", name="up1"),
        layers.ReLU(name="relu2"),
        layers.Conv2D(1, 3, padding="same", name="out"),
        layers.Activation("sigmoid", name="sigmoid"),
    ])


SPECIFIED = ModelPair("specified", SpecifiedCNN, lambda: __import__("keras_ref.models").models.specified_cnn(), (1, 28, 28), "mnist")
BN = ModelPair("tiny_bn", BNNet, bn_keras, (1, 28, 28), "mnist")
AE = ModelPair("tiny_ae", TinyAE, ae_keras, (1, 28, 28), "mnist", task="denoising", loss="bce")


MODEL_CHECKS = ["parameters", "shapes", "equivalence", "training"]  # these tiny pairs have no recipe (check 6)


def rows_of(pair: ModelPair, *names: str) -> dict[str, checks.Row]:
    return {r.check: r for r in checks.run_checks(pair, list(names) or MODEL_CHECKS)}


def failing(rows: dict[str, checks.Row]) -> list[str]:
    return [name for name, r in rows.items() if r.passed is False]


# --- everything registered, and every supported layer type, passes ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(all_pairs()))
def test_registered_pairs_pass_checks_1_to_4(name):
    rows = rows_of(all_pairs()[name])
    assert not failing(rows), {k: rows[k].value for k in failing(rows)}


@pytest.mark.parametrize("pair", [BN, AE], ids=lambda p: p.name)
def test_batchnorm_dropout_and_transposed_conv_pairs_pass(pair):
    rows = rows_of(pair)
    assert not failing(rows), {k: rows[k].value for k in failing(rows)}
    if pair is BN:  # the moving statistics were compared, not skipped
        assert any("moving variance" in k for k in rows)
        assert rows["1 parameters: non-trainable"].number == 2 * (8 + 32)


def test_batchnorm1d_after_flatten_gets_its_statistics_permuted():
    pair = dataclasses.replace(BN, torch_model=lambda: BNNet(bn_after_flatten=True),
                               keras_model=lambda: bn_keras(bn_after_flatten=True))
    rows = rows_of(pair, "equivalence")
    assert not failing(rows), rows


def test_torch_padding_1_output_padding_1_is_not_keras_same():
    """ConvTranspose2d(3, stride=2, padding=1, output_padding=1) has Keras' output *shape* but its output is
    shifted by one pixel against Conv2DTranspose(3, strides=2, padding='same'); check 3 names the layer."""
    naive = dataclasses.replace(AE, torch_model=lambda: TinyAE(nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1)))
    rows = rows_of(naive, "shapes", "equivalence")
    assert rows["2 output shapes per layer (NHWC -> NCHW)"].passed
    row = rows["3 outputs equal, weights torch -> Keras"]
    assert not row.passed and "worst layer: up1" in row.value

    # The shift, exactly: torch's output[i] is Keras' output[i + 1].
    t = nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1)
    k = layers.Conv2DTranspose(3, 3, strides=2, padding="same")
    k.build((None, 5, 5, 2))
    k.kernel.assign(t.weight.detach().numpy().transpose(2, 3, 1, 0))
    k.bias.assign(t.bias.detach().numpy())
    x = torch.randn(1, 2, 5, 5)
    yt = t(x).detach().numpy()
    yk = np.moveaxis(keras.ops.convert_to_numpy(k(x.permute(0, 2, 3, 1).numpy())), -1, 1)
    assert np.abs(yt - yk).max() > 0.1
    assert np.abs(yt[..., :-1, :-1] - yk[..., 1:, 1:]).max() < 1e-5


# --- planted mistakes: each caught by the right check ----------------------------------------------------------


def test_transposed_conv_kernel_is_caught_by_check_3(monkeypatch):
    monkeypatch.setattr(transfer, "conv_kernel_to_keras", lambda w: w.transpose(3, 2, 1, 0))  # (kw, kh, in, out)
    monkeypatch.setattr(transfer, "conv_kernel_to_torch", lambda k: k.transpose(3, 2, 1, 0))
    rows = rows_of(SPECIFIED, "parameters", "shapes", "equivalence")
    assert failing(rows) == ["3 outputs equal, weights torch -> Keras", "3 outputs equal, weights Keras -> torch"]
    assert "worst layer: conv" in rows["3 outputs equal, weights torch -> Keras"].value


def test_wrong_flatten_order_is_caught_by_check_3(monkeypatch):
    # The first Dense kernel copied without reordering its rows from torch's (C, H, W) to Keras' (H, W, C).
    monkeypatch.setattr(transfer, "_permute_rows", lambda a, order: a)
    monkeypatch.setattr(transfer, "_unpermute_rows", lambda a, order: a)
    rows = rows_of(SPECIFIED, "equivalence")
    for direction in ("torch -> Keras", "Keras -> torch"):
        row = rows[f"3 outputs equal, weights {direction}"]
        assert not row.passed and "worst layer: fc1" in row.value, row.value


def test_missing_bias_is_caught_by_check_1_and_refused_by_the_transfer():
    def no_bias():
        net = SpecifiedCNN()
        net.fc3 = nn.Linear(50, 10, bias=False)
        return net

    rows = rows_of(dataclasses.replace(SPECIFIED, torch_model=no_bias))
    assert not rows["1 parameters: trainable"].passed
    assert rows["1 parameters: per layer"].value.startswith("fc3:")
    assert "fc3: bias in Keras only" in rows["3 outputs equal, weights torch -> Keras"].value


def test_wrong_batchnorm_epsilon_is_caught_by_check_3():
    pair = dataclasses.replace(BN, keras_model=lambda: bn_keras(eps=1e-3))  # Keras' default epsilon
    rows = rows_of(pair, "parameters", "equivalence")
    assert not rows["3 hyper-parameters (BatchNorm eps, momentum; Dropout rate)"].passed
    for direction in ("torch -> Keras", "Keras -> torch"):  # the outputs themselves differ, not just the setting
        row = rows[f"3 outputs equal, weights {direction}"]
        assert not row.passed and "worst layer: bn" in row.value, row.value
    assert not failing({k: v for k, v in rows.items() if k.startswith("1")})


def test_check_4_keras_runs_in_float64_and_is_restored_afterwards():
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 2))
    with checks.keras_float64():
        m = keras.Sequential([keras.Input((6, 6, 2)), layers.Conv2D(1, 3), layers.BatchNormalization(epsilon=1e-5)])
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
        # A one-filter Conv2D: torch's float64 backward fails on the channels_last kernel Keras would hand it.
        m.train_on_batch(x, np.zeros((4, 4, 4, 1)))
        conv = keras.ops.convert_to_numpy(m.layers[0](x))
        out = keras.ops.convert_to_numpy(m(x, training=True))
        gamma, beta = (keras.ops.convert_to_numpy(w) for w in (m.layers[1].gamma, m.layers[1].beta))
    # BatchNormalization computed in float64 (Keras' promotion would have rounded it to float32: ~1e-7 off).
    expected = gamma * (conv - conv.mean()) / np.sqrt(conv.var() + 1e-5) + beta
    assert out.dtype == np.float64 and np.abs(out - expected).max() < 1e-12
    assert keras.config.floatx() == "float32" and keras.config.dtype_policy().name == "float32"
    assert keras.backend.result_type("float64", "float32") == "float32"  # Keras' own promotion again
    assert str(layers.Dense(1)(np.ones((1, 2), "float32")).dtype) == "torch.float32"


def test_wrong_batchnorm_momentum_is_caught_by_check_4():
    pair = dataclasses.replace(BN, keras_model=lambda: bn_keras(momentum=0.99))  # Keras' default, torch's 0.1 is 0.9
    rows = rows_of(pair, "training")
    assert set(failing(rows)) == {"4 training: BatchNorm moving mean", "4 training: BatchNorm moving variance (torch unbiased, Keras biased)"}


def test_wrong_dropout_rate_is_reported():
    rows = rows_of(dataclasses.replace(BN, keras_model=lambda: bn_keras(rate=0.5)), "equivalence")
    assert failing(rows) == ["3 hyper-parameters (BatchNorm eps, momentum; Dropout rate)"]


def _training_rows(pair: ModelPair) -> dict[str, checks.Row]:
    return {r.check.split(" (")[0]: r for r in checks.run_checks(pair, ["training"])}


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_summed_instead_of_averaged_loss_is_caught_by_check_4(monkeypatch, framework):
    if framework == "torch":
        monkeypatch.setitem(checks.TORCH_LOSSES, "cross_entropy", lambda: nn.CrossEntropyLoss(reduction="sum"))
    else:
        monkeypatch.setitem(checks.KERAS_LOSSES, "cross_entropy",
                            lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="sum"))
    rows = _training_rows(SPECIFIED)
    assert not rows["4 training: weights after 20 SGD steps"].passed
    assert rows["4 training: weights after 20 SGD steps"].number > 1.0  # ~ batch size - 1, far above the bound


def test_a_diverged_twin_is_the_largest_difference_whatever_the_order_of_its_layers():
    """NaN weights (a planted summed loss diverges on some backends) count as an infinite difference: Python's max()
    would drop a NaN that comes after a finite value and let a diverged twin pass check 4."""
    finite, diverged = torch.tensor([0.5, -2.0]), torch.tensor([float("nan"), 1.0])
    assert checks._max_abs([finite, diverged]) == float("inf") == checks._max_abs([diverged, finite])
    assert checks._max_abs([finite]) == 2.0 and checks._max_abs([]) == 0.0
    assert checks._relative(1.0, float("nan")) == float("inf") and checks._relative(2.0, 1.0) == 0.5


@pytest.mark.slow
@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_different_learning_rate_convention_is_caught_by_check_4(monkeypatch, factor):
    monkeypatch.setattr(checks, "keras_optimizer", lambda lr: keras.optimizers.SGD(learning_rate=lr * factor))
    rows = _training_rows(SPECIFIED)
    assert not rows["4 training: weights after 20 SGD steps"].passed
    assert rows["4 training: loss per step"].number > checks.LOSS_TOL  # later losses drift apart too


class UnbiasedVarianceBN2d(nn.BatchNorm2d):
    """Wrong on purpose: normalises training batches with the unbiased batch variance (x n/(n-1)); torch and
    Keras both use the biased one there (and differ only in the running average, which check 4 accounts for)."""

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3), correction=1)
        with torch.no_grad():  # running statistics as torch keeps them
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var, self.momentum)
        scale = self.weight / torch.sqrt(var + self.eps)
        return (x - mean[:, None, None]) * scale[:, None, None] + self.bias[:, None, None]


class InferenceModeBN2d(nn.BatchNorm2d):
    """Wrong on purpose: normalises training batches with the running statistics, as in inference (what a
    BatchNorm left in eval mode, or a Keras layer called with training=False, does)."""

    def forward(self, x):
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


@pytest.mark.parametrize("mistake", [UnbiasedVarianceBN2d, InferenceModeBN2d])
def test_batchnorm_training_path_mistakes_are_caught_by_check_4_only(mistake):
    """Both give the right outputs in inference mode (check 3 passes), so only training can tell. The unbiased
    variance changes the normalisation by 1/n with n = 32 x 28 x 28 values per channel: a 2e-5 effect."""

    def net():
        m = BNNet()
        m.bn1 = mistake(8, eps=1e-5, momentum=0.1)
        return m

    rows = rows_of(dataclasses.replace(BN, torch_model=net))
    assert all(r.passed for k, r in rows.items() if not k.startswith("4 ")), {k: r.value for k, r in rows.items()}
    weights = next(r for k, r in rows.items() if k.startswith("4 training: weights"))
    assert not weights.passed and weights.number > 10 * checks.TRAIN_TOL, weights.value


def test_check_4_steps_on_the_pairs_own_batch():
    """A pair's step_batch sets the images per float64 step, and the moving-variance row's n with it: the
    correct BatchNorm net passes at 8 (with n taken from the default 32 its variance row would fail)."""
    rows = rows_of(dataclasses.replace(BN, step_batch=8))
    assert all(r.passed for r in rows.values()), {k: r.value for k, r in rows.items() if not r.passed}
    assert any(k.startswith("4 training: weights after 20 SGD steps (lr 0.05, batch 8,") for k in rows)
    with pytest.raises(ValueError, match="step_batch"):
        dataclasses.replace(BN, step_batch=1)


class _StraightThroughReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad):  # wrong on purpose: lets the gradient through where x < 0
        return grad


class WrongGradientReLU(nn.Module):
    def forward(self, x):
        return _StraightThroughReLU.apply(x)


@pytest.mark.slow
def test_wrong_gradient_is_caught_by_check_4_although_outputs_agree():
    def net():
        m = SpecifiedCNN()
        m.relu3 = WrongGradientReLU()
        return m

    rows = rows_of(dataclasses.replace(SPECIFIED, torch_model=net))
    assert failing(rows) == ["4 training: weights after 20 SGD steps (lr 0.05, batch 32, cross_entropy, float64)",
                             "4 training: loss per step"]


def test_unmatched_layer_names_fail_every_check_with_the_reason():
    def renamed():
        m = bn_keras()
        m.get_layer("fc2").name = "logits"
        return m

    rows = checks.run_checks(dataclasses.replace(BN, keras_model=renamed), MODEL_CHECKS)
    assert len(rows) == 4 and all(r.passed is False and "fc2" in r.value and "logits" in r.value for r in rows)


def test_drift_report_compares_float32_runs_with_float64():
    """python -m parity.drift: the numbers behind check 4's float64 (docs/parity.md), on the tiny BN pair."""
    from parity import drift

    with keras.device("cpu"), checks.one_thread():
        d = drift.drift(BN)
        steps = drift.per_step(BN)
    assert set(d) >= {"torch float32 vs float64", "Keras float32 vs torch float32"}
    assert d["Keras float32 vs torch float32"] < 1e-4  # measured 5e-7: without ReLU flips float32 agrees
    assert d["torch float32 vs float64"] > 1e-3  # measured 1.3e-2: BatchNorm's cancellation, the same in both
    assert [s[0] for s in steps] == list(range(1, checks.SGD_STEPS + 1))
    assert all(0 < err < 1e-3 and flips >= 0 for _, err, _, flips in steps)
    with pytest.raises(SystemExit):
        drift.main(["--pairs", "no_such_pair"])


# --- check 5 logic, the report and the command ------------------------------------------------------------


def test_accuracy_band_margin_and_baseline_logic(monkeypatch):
    canned = {"lightning": [0.991, 0.993], "keras": [0.990, 0.992]}
    monkeypatch.setattr(accuracy, "train_runs", lambda pair, fw, seeds, *a: [{"test_acc": v} for v in canned[fw]])
    pair = dataclasses.replace(SPECIFIED, accuracy_band=(0.988, 0.996), accuracy_margin=0.004)
    rows = accuracy.check_accuracy(pair, seeds=2, baselines=[(0.9915, "mnist", "test")])
    # bands, margin, Welch over seeds, McNemar (not run: the canned runs have no per-image answers), HOG+SVM
    assert [r.passed for r in rows] == [True, True, True, True, None, False]  # 99.10% keras mean does not beat 99.15%
    assert "99.20% ± 0.14%" in rows[0].value and rows[3].check.startswith("5 Welch")
    rows = accuracy.check_accuracy(pair, seeds=2, baselines=[(0.97, None, "test")])
    assert all(r.passed is not False for r in rows)
    assert accuracy.check_accuracy(pair, seeds=2)[-1].passed is False  # full budget: no baseline figure fails
    assert accuracy.check_accuracy(pair, seeds=2, baselines=[(0.97, "cifar10", "x")])[-1].passed is False
    canned["keras"] = [0.985, 0.987]
    rows = accuracy.check_accuracy(pair, seeds=2, baselines=[(0.97, None, "test")])
    assert [r.passed for r in rows] == [True, False, False, True, None, True]  # 2 seeds: Welch p 0.051, no alarm
    canned.update(lightning=[0.991, 0.993, 0.992, 0.9915, 0.9925], keras=[0.985, 0.987, 0.986, 0.9855, 0.9865])
    assert accuracy.check_accuracy(pair, seeds=5)[3].passed is False  # 5 seeds: the same gap is a difference


def test_the_paired_test_sees_a_difference_on_the_same_images_that_the_seeds_cannot():
    import numpy as np

    rng = np.random.default_rng(0)
    right = rng.random(10_000) < 0.99
    same = [right.copy() for _ in range(3)]
    worse = [r & (rng.random(10_000) > 0.004) for r in same]  # Keras misses 0.4 % more of the same images
    assert accuracy.mcnemar_row(same, [r.copy() for r in same]).passed is True
    row = accuracy.mcnemar_row(same, worse)
    assert row.passed is False and row.number < 1e-6 and "only in Keras 0" in row.value
    other = [rng.random(10_000) < 0.99 for _ in same]  # other mistakes at the same rate: no difference to find
    assert accuracy.mcnemar_row(same, other).passed is True


def test_baseline_from_figure_or_metrics_json(tmp_path):
    assert accuracy.baseline_from("99.36") == (pytest.approx(0.9936), None, "--baseline")
    assert accuracy.baseline_from("0.9921")[0] == pytest.approx(0.9921)
    (tmp_path / "metrics.json").write_text(json.dumps({"test_acc": 0.993, "dataset": "mnist"}))
    assert accuracy.baseline_from(str(tmp_path)) == (0.993, "mnist", str(tmp_path / "metrics.json"))
    with pytest.raises(ValueError):
        accuracy.baseline_from("not-a-figure")


def test_command_prints_tables_writes_json_and_exits_nonzero_on_failure(monkeypatch, tmp_path, capsys):
    assert main(["--pairs", "specified_cnn", "--checks", "parameters", "--backends", "torch", "--json", str(tmp_path / "p.json")]) == 0
    out = json.loads((tmp_path / "p.json").read_text())
    assert out["passed"] and out["backends"]["torch"]["pairs"]["specified_cnn"][0]["result"] == "pass"
    printed = capsys.readouterr().out
    assert "## specified_cnn" in printed and "| check " in printed and " torch " in printed

    def no_bias():
        net = SpecifiedCNN()
        net.fc1 = nn.Linear(400, 100, bias=False)
        return net

    monkeypatch.setitem(PAIRS, "broken", dataclasses.replace(all_pairs()["specified_cnn"], name="broken", torch_model=no_bias))
    assert main(["--pairs", "broken", "--checks", "parameters", "--backends", "torch"]) == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.skipif(__import__("importlib").util.find_spec("jax") is None, reason="the jax extra is not installed")
def test_one_table_has_a_column_per_backend(tmp_path, capsys):
    """The backend of this process (torch) runs here, JAX in a process of its own; one table, both columns."""
    assert main(["--pairs", "specified_cnn", "--checks", "parameters", "--backends", "torch", "jax",
                 "--json", str(tmp_path / "p.json")]) == 0
    out = json.loads((tmp_path / "p.json").read_text())
    assert list(out["backends"]) == ["torch", "jax"] and out["passed"]
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| check"))
    assert [c.strip() for c in header.strip("|").split("|")] == ["check", "bound", "torch", "jax"]


@pytest.mark.slow
def test_check_5_quick_budget_trains_both_frameworks(tmp_path):
    """CI budget: one seed, one epoch per framework, the pair's quick band (no baseline in CI: skipped).
    Through the pair's YAML recipe, with the two frameworks trained side by side in their own processes."""
    pair = all_pairs()["specified_cnn"]
    assert pair.recipe and accuracy.framework_of(pair, "keras")[0].entry == "keras_ref.train"
    rows = accuracy.check_accuracy(pair, quick=True, runs_dir=str(tmp_path), parallel=True)
    runs = sorted(p.parent.parent.name for p in tmp_path.glob("*/version_*/metrics.json"))
    assert runs == ["mnist_specified_cnn_augmented", "mnist_specified_cnn_augmented_keras"], runs
    assert not [r for r in rows if r.passed is False], [(r.check, r.value) for r in rows]
    assert rows[-1].passed is None  # the baseline comparison needs its figure


def test_a_parallel_check_5_trains_the_recipe_it_was_given(monkeypatch):
    """--jobs 2 trains each framework in a fresh process that looks the pair up again: --recipe must reach it."""
    from parity import accuracy

    seen = []
    monkeypatch.setattr(accuracy, "_scores", lambda pair, framework, *args: seen.append((pair.recipe, framework)) or ([], []))
    accuracy._scores_worker("specified_cnn", "configs/mnist_specified_cnn.yaml", "keras", (), 1)
    assert seen == [("configs/mnist_specified_cnn.yaml", "keras")]
