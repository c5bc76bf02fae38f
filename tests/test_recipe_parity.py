"""Recipe parity: Keras' optimisers and initialisation as torch's (keras_ref.torch_like), and check 6
(parity.recipe_checks), with a planted mistake for each part that makes it fail."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras

from keras_ref import recipes, torch_like
from parity import recipe_checks
from parity.registry import all_pairs


def _run_both(torch_opt, keras_opt, lrs, steps=30, seed=0):
    """The same gradients through a torch and a Keras optimizer, the learning rate changed every step."""
    rng = np.random.default_rng(seed)
    w0 = rng.normal(size=(7,))
    p = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float64))
    t_opt = torch_opt([p])
    v = keras.Variable(w0.astype("float64"), dtype="float64")
    keras_opt.build([v])
    for k in range(steps):
        g = rng.normal(size=(7,))
        for group in t_opt.param_groups:
            group["lr"] = float(lrs[k])
        keras_opt.learning_rate.assign(lrs[k])
        p.grad = torch.tensor(g, dtype=torch.float64)
        t_opt.step()
        keras_opt.apply_gradients([(keras.ops.convert_to_tensor(g.astype("float64")), v)])
    return p.detach().numpy(), keras.ops.convert_to_numpy(v)


# A schedule (where the momentum conventions part), in values float32 holds exactly: Keras keeps the learning rate
# in a float32 variable, torch in a Python float.
LRS = np.linspace(0.2, 0.01, 30).astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("name,torch_opt,keras_opt", [
    ("Adam", lambda ps: torch.optim.Adam(ps, lr=0.1), lambda: torch_like.TorchAdam(0.1)),
    ("Adam + L2", lambda ps: torch.optim.Adam(ps, lr=0.1, weight_decay=0.05), lambda: torch_like.TorchAdam(0.1, l2=0.05)),
    ("AdamW", lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=0.05),
     lambda: torch_like.TorchAdamW(0.1, weight_decay=0.05)),
    ("SGD momentum", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), lambda: torch_like.TorchSGD(0.1, momentum=0.9)),
    ("SGD Nesterov + L2", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.85, nesterov=True, weight_decay=1e-3),
     lambda: torch_like.TorchSGD(0.1, momentum=0.85, nesterov=True, l2=1e-3)),
])
def test_keras_optimizers_update_as_torchs_under_a_schedule(name, torch_opt, keras_opt):
    t, k = _run_both(torch_opt, keras_opt(), LRS)
    np.testing.assert_allclose(k, t, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,torch_opt,keras_opt", [
    ("SGD Nesterov + L2", lambda groups: torch.optim.SGD(groups, lr=0.1, momentum=0.85, nesterov=True, weight_decay=1e-3),
     lambda: torch_like.TorchSGD(0.1, momentum=0.85, nesterov=True, l2=1e-3)),
    ("Adam + L2", lambda groups: torch.optim.Adam(groups, lr=0.1, weight_decay=0.05), lambda: torch_like.TorchAdam(0.1, l2=0.05)),
])
def test_keras_steps_the_norm_variables_as_torchs_second_parameter_group(name, torch_opt, keras_opt):
    """norm_lr_scale: torch's group {lr × 64, weight_decay ÷ 64} (lightning_impl.tasks.schedules) against Keras'
    scale_norms, under a schedule; a variable left out of scale_norms steps as torch's first group."""
    rng, scale = np.random.default_rng(1), 64.0
    w0 = [rng.normal(size=(5,)), rng.normal(size=(3,))]
    plain, norm = (torch.nn.Parameter(torch.tensor(w, dtype=torch.float64)) for w in w0)
    t_opt = torch_opt([{"params": [plain]}, {"params": [norm]}])
    t_opt.param_groups[1]["weight_decay"] /= scale
    variables = [keras.Variable(w.astype("float64"), dtype="float64") for w in w0]
    k_opt = keras_opt()
    k_opt.build(variables)
    k_opt.scale_norms(variables[1:], scale)
    assert torch_like.describe(k_opt)["norm_lr_scale"] == (scale, 1)
    for lr in LRS:
        grads = [rng.normal(size=w.shape) for w in w0]
        t_opt.param_groups[0]["lr"], t_opt.param_groups[1]["lr"] = float(lr), float(lr) * scale
        k_opt.learning_rate.assign(lr)
        for p, g in zip((plain, norm), grads):
            p.grad = torch.tensor(g, dtype=torch.float64)
        t_opt.step()
        k_opt.apply_gradients([(keras.ops.convert_to_tensor(g), v) for g, v in zip(grads, variables)])
    for p, v in zip((plain, norm), variables):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(v), p.detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("torch_opt,keras_opt", [
    (lambda ps: torch.optim.Adam(ps, lr=0.1), lambda: keras.optimizers.Adam(0.1)),  # ε on √v, not √v̂
    (lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), lambda: keras.optimizers.SGD(0.1, momentum=0.9)),
], ids=["Keras Adam", "Keras SGD momentum"])
def test_keras_own_optimizers_differ_from_torchs(torch_opt, keras_opt):
    """What torch_like exists for: Keras' own updates are not torch's (the test above could not fail otherwise)."""
    t, k = _run_both(torch_opt, keras_opt(), LRS)
    assert np.abs(k - t).max() > 1e-6


def test_torch_init_draws_torchs_bounds_per_layer_kind():
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(5, 3, name="c")(inputs)
    x = keras.layers.Conv2DTranspose(4, 2, strides=2, name="t")(x)
    x = keras.layers.Conv2D(2, 1, kernel_initializer="zeros", name="z")(x)  # declared: kept
    x = keras.layers.Dense(6, name="d")(keras.layers.Flatten()(x))
    model = torch_like.torch_init(keras.Model(inputs, x), seed=0)
    bounds = {"c": 1 / np.sqrt(3 * 9), "t": 1 / np.sqrt(4 * 4), "d": 1 / np.sqrt(12 * 12 * 2)}
    assert torch.nn.ConvTranspose2d(5, 4, 2).weight.shape[1] * 4 == 16  # torch's fan_in of a transposed conv: out × k²
    for name, bound in bounds.items():
        layer = model.get_layer(name)
        for w in (layer.kernel, layer.bias):
            values = keras.ops.convert_to_numpy(w)
            assert np.abs(values).max() <= bound and np.abs(values).max() > 0.5 * bound, name
    assert not keras.ops.convert_to_numpy(model.get_layer("z").kernel).any()


def _pair(name):
    return all_pairs()[name]


def _by_part(rows):
    parts = {}
    for r in recipe_checks.check_recipe(rows):
        parts.setdefault(r.check[:2], []).append(r)
    return {k: all(r.passed for r in v) for k, v in parts.items()}


@pytest.fixture
def fresh():
    recipe_checks.sides.cache_clear()
    yield
    recipe_checks.sides.cache_clear()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["specified_cnn", "denoising_ae"])
def test_check_6_passes_for_the_default_recipes(name, fresh):
    assert _by_part(_pair(name)) == {"6a": True, "6b": True, "6c": True, "6d": True, "6e": True, "6f": True}
    pair = _pair(name)
    windows = [r.check for r in recipe_checks.check_recipe(pair) if r.check.startswith("6d")]
    end = recipe_checks.warmup_end(recipe_checks.sides(pair.trained_by, pair.task))
    assert end > 0 and len(windows) == 2 and "from step 0" in windows[0] and f"from step {end} (end of warm-up)" in windows[1]


def test_check_6_reports_a_recipe_keras_does_not_translate_as_not_run(fresh, monkeypatch):
    def refuse(path):
        raise recipes.RecipeError("model.optimizer.class_path: no Keras translation for 'torch.optim.LBFGS'")

    monkeypatch.setattr(recipes, "classifier_recipe", refuse)
    (row,) = recipe_checks.check_recipe(_pair("whitened_cnn_cifar10"))
    assert row.passed is None and "not run" in row.value and "LBFGS" in row.value


@pytest.mark.slow
def test_check_6_passes_for_the_whitened_recipe_stem_and_norm_rate_included(fresh):
    """The CIFAR-10 recipe's own parts: SGD with Nesterov momentum and its coupled decay, the BatchNorm shifts at
    64x the rate (6b, 6d), the stem each trainer sets from its training images (6h)."""
    rows = recipe_checks.check_recipe(_pair("whitened_cnn_cifar10"))
    assert {r.check[:2] for r in rows} == {"6a", "6b", "6c", "6d", "6e", "6f", "6g", "6h"}
    assert all(r.passed for r in rows), [r for r in rows if not r.passed]
    assert "norm_lr_scale (64.0, 6)" in next(r.value for r in rows if r.check.startswith("6b"))


@pytest.mark.slow
def test_check_6_fails_without_the_norm_rate_or_with_another_stem(fresh, monkeypatch):
    pair = _pair("whitened_cnn_cifar10")
    s = recipe_checks.sides(pair.trained_by, pair.task)
    monkeypatch.setattr(torch_like._CoupledDecay, "scale_norms", lambda self, variables, scale: None)
    (optimizer,) = recipe_checks.check_optimizer(s)
    assert not optimizer.passed and "norm_lr_scale" in optimizer.value
    assert not any(r.passed for r in recipe_checks.check_steps(pair, s))
    monkeypatch.undo()
    from keras_ref import train

    monkeypatch.setattr(train, "stem_images", lambda x_train: x_train[5000:10000])  # other images than Lightning's
    (stem,) = recipe_checks.check_stem(s)
    assert not stem.passed


@pytest.mark.slow
def test_check_6a_fails_on_keras_default_initialisation(fresh, monkeypatch):
    from keras_ref import train

    monkeypatch.setattr(train, "torch_init", lambda model, seed: model)  # glorot kernels, zero biases
    assert _by_part(_pair("specified_cnn"))["6a"] is False


@pytest.mark.slow
def test_check_6b_and_6d_fail_on_keras_epsilon_placement(fresh, monkeypatch):
    monkeypatch.setattr(recipes, "TorchAdam", lambda lr, l2=0.0, **kw: keras.optimizers.Adam(lr, **kw))
    parts = _by_part(_pair("specified_cnn"))
    assert parts["6b"] is False and parts["6d"] is False and parts["6a"] is True


@pytest.mark.slow
def test_only_the_second_6d_window_sees_a_bias_correction_that_restarts(fresh, monkeypatch):
    """Adam's bias correction counted from the optimiser's own first update instead of the run's step (what a
    resumed run that restores the schedule but not the step count would do) agrees with torch from step 0 and
    parts from it after the warm-up: the window from the end of the warm-up is the one that sees it."""
    from keras_ref import torch_like

    real, updates = torch_like._foreach_adam, {}

    def restarting(opt, torch, grads, params, variables, lr):
        updates[id(opt)] = updates.get(id(opt), 0) + 1
        run_step = int(opt.iterations)
        opt.iterations.assign(updates[id(opt)] - 1)
        try:
            real(opt, torch, grads, params, variables, lr)
        finally:
            opt.iterations.assign(run_step)  # the schedule and Keras' own count go on from the run's step

    monkeypatch.setattr(torch_like, "_foreach_adam", restarting)
    first, after_warmup = [r for r in recipe_checks.check_recipe(_pair("specified_cnn")) if r.check.startswith("6d")]
    assert "from step 0" in first.check and first.passed, first.value
    assert "end of warm-up" in after_warmup.check and not after_warmup.passed, after_warmup.value


@pytest.mark.slow
def test_check_6c_fails_on_a_schedule_shifted_by_one_step(fresh, monkeypatch):
    from keras_ref import train

    make = recipes.make_optimizer
    monkeypatch.setattr(train, "make_optimizer", lambda opt, total, *a: make(opt, total + 1, *a))
    assert _by_part(_pair("specified_cnn"))["6c"] is False


@pytest.mark.slow
def test_check_6e_fails_on_another_order_or_another_split(fresh, monkeypatch):
    import dataclasses

    from keras_ref import epochs

    s = recipe_checks.sides("mnist_specified_cnn.yaml", "classification")
    assert [r.passed for r in recipe_checks.check_data(s)] == [True, True]
    other_split = dataclasses.replace(s, keras_recipe={**s.keras_recipe, "split_seed": s.keras_recipe["split_seed"] + 1})
    assert [r.passed for r in recipe_checks.check_data(other_split)] == [False, True]
    order = epochs.epoch_order
    monkeypatch.setattr(epochs, "epoch_order", lambda n, seed, epoch: order(n, seed, epoch + 1))  # one epoch late
    assert [r.passed for r in recipe_checks.check_data(s)] == [True, False]


def test_check_6f_fails_on_a_float32_twin_of_a_bf16_run():
    from types import SimpleNamespace

    from keras_ref.models import TWINS

    def side(lightning: str, policy: str):
        def keras_net(seed):
            with recipes.dtype_policy(policy):
                return TWINS["SpecifiedCNN"]((28, 28, 1), 10)

        return SimpleNamespace(cli=SimpleNamespace(trainer=SimpleNamespace(precision=lightning)), keras_net=keras_net)

    assert recipe_checks.check_precision(side("bf16-mixed", "mixed_bfloat16"))[0].passed is True
    assert recipe_checks.check_precision(side("bf16-mixed", "float32"))[0].passed is False
    assert recipe_checks.check_precision(side("32-true", "float32"))[0].passed is True
    assert keras.config.dtype_policy().name == "float32"  # the policy is back once the twin is built


def test_the_keras_policy_follows_lightnings_resolved_precision(monkeypatch):
    from core import configs, precision

    config = configs.merge(configs.load("mnist_improved.yaml"), {"trainer": {"precision": None}})
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert recipes.classifier_recipe(config)["dtype_policy"] == "mixed_bfloat16"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert recipes.classifier_recipe(config)["dtype_policy"] == "float32"
    pinned = configs.merge(config, {"trainer": {"precision": "bf16-mixed"}})
    assert recipes.classifier_recipe(pinned)["dtype_policy"] == "mixed_bfloat16"


@pytest.mark.slow
def test_check_6g_passes_for_both_augmentations_and_fails_on_keras_own_layers(fresh, monkeypatch):
    from keras_ref import augment

    mnist = recipe_checks.sides("mnist_improved.yaml", "classification")
    cifar = recipe_checks.sides("cifar10_improved.yaml", "classification")
    assert all(r.passed for r in recipe_checks.check_augmentation(mnist)) and len(recipe_checks.check_augmentation(mnist)) == 3
    assert all(r.passed for r in recipe_checks.check_augmentation(cifar))

    def translation(padding=4, flip=True):  # Keras' own layer: a rounded uniform real shift
        return keras.Sequential([keras.layers.RandomTranslation(padding / 32, padding / 32, fill_mode="constant",
                                                                fill_value=0.0, interpolation="nearest"),
                                 keras.layers.RandomFlip("horizontal")])

    monkeypatch.setitem(augment.AUGMENTATIONS, "crop_flip_augment", translation)
    failed = [r.check for r in recipe_checks.check_augmentation(cifar) if not r.passed]
    assert any("shift rows" in c for c in failed) and any("shift columns" in c for c in failed)
    monkeypatch.setitem(augment.AUGMENTATIONS, "digit_augment", lambda degrees=10.0, translate=0.1: augment.digit_augmentation(2 * degrees, translate))
    failed = [r.check for r in recipe_checks.check_augmentation(mnist) if not r.passed]
    assert any("rotation" in c for c in failed)
