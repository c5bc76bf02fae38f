"""Checks 1-4 for one registered model pair; each returns rows (check, value, bound, passed).

1. parameters: totals and per layer, trainable and non-trainable (BatchNorm statistics: torch buffers <->
   Keras non-trainable weights; torch's num_batches_tracked counter has no twin and is not counted);
2. output shapes, layer by layer, Keras NHWC mapped onto torch NCHW;
3. numerical equivalence: weights copied torch -> Keras and Keras -> torch, the same real test images
   through both, largest absolute difference over every layer's output (the worst layer is named);
4. training-step parity: identical weights, the same batches, plain SGD for SGD_STEPS steps in each
   framework's own training path, then the weights compared -- in float64 (see TRAIN_DTYPE).

Everything runs on the CPU (checks 1-3 in float32, check 4 in float64): no TF32, no GPU kernel choices, so the
bounds mean the same everywhere.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras
import numpy as np
import torch
from torch import nn

from lightning_impl.data.datamodules import DATAMODULES, ImageDataModule
from parity.registry import ModelPair
from parity.shapes import (
    LayerMismatch,
    LayerPair,
    keras_shape_in_torch_layout,
    keras_to_torch_layout,
    keras_trace,
    torch_trace,
)
from parity.transfer import (
    TransferError,
    bn_differences,
    dropout_differences,
    keras_to_torch,
    layer_pairs,
    torch_to_keras,
)

# --- the checks' settings, in one place --------------------------------------------------------------------
SEED = 0
N_IMAGES = 256  # real test images through both models (check 3)
OUTPUT_TOL = 1e-5  # check 3: max |torch - Keras| of any layer's output, float32 (the bound)
SGD_LR = 0.05  # check 4: plain SGD, no momentum, constant learning rate
SGD_STEPS = 20
# Check 4 trains in float64 in both frameworks. In float32 the 20-step trajectory of a BatchNorm + ReLU net is
# not fixed by the mathematics: a ReLU input within float32 rounding of 0 is on in one kernel and off in
# another, and one such flip moved a convolution's gradient by up to 8e-3 of the largest gradient entry
# (python -m parity.drift --per-step). Measured for improved_cnn_mnist after 20 steps: torch float32 against
# torch float32 with channels_last kernels differs by 0.26 x the update, torch float32 against float64 by 0.23,
# Keras float32 against torch float32 by 0.22 -- torch agrees with itself no better than with Keras. In float64
# rounding is ~1e-16, flips do not happen, and what remains is the mathematics (docs/parity.md).
TRAIN_DTYPE = torch.float64
# Check 4 bound, relative to the largest weight change that training itself made (max |w_20 - w_0|).
# Why relative: rounding differs between the frameworks' kernels (summation order in convolutions, matrix
# products and reductions); in float64 that leaves <= 6e-14 of the update after 20 steps (measured, every pair:
# docs/parity.md). The mistakes this check exists for change the update itself: a summed instead of averaged
# loss multiplies it by the batch size (32), a different learning-rate convention by its ratio, a wrong gradient
# by O(1); the subtlest one measured, BatchNorm2d normalising with the unbiased batch variance (a 1/n change,
# n = 25,088 values per channel), moved the weights by 1.6e-6 of the update. 1e-8 sits 1e5x above the rounding
# and 160x below that.
TRAIN_TOL = 1e-8
# Per-step losses: identical up to rounding (the first step sees identical weights); measured < 1e-13.
LOSS_TOL = 1e-8  # relative


@dataclass
class Row:
    check: str
    value: str
    bound: str
    passed: bool | None  # None: not run (the reason is in value)
    number: float | None = None  # the measured figure behind `value`, for --json


# --- data --------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def datamodule(dataset: str) -> ImageDataModule:
    if dataset not in DATAMODULES:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(DATAMODULES)}")
    dm = DATAMODULES[dataset]()
    dm.prepare_data()
    dm.setup()
    return dm


def default_batch(
    pair: ModelPair, images: torch.Tensor, labels: torch.Tensor, dm: ImageDataModule, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Classification: standardised images and labels, as training sees them. Denoising: images in [0, 1]
    with Gaussian noise (std 0.3, clipped) as inputs and the clean images as targets."""
    if pair.task == "classification":
        return dm.normalize(images), labels
    clean = images.float() / 255.0
    noisy = (clean + 0.3 * torch.randn(clean.shape, generator=generator)).clamp(0.0, 1.0)
    return noisy, clean


def real_batch(pair: ModelPair, split: str, n: int, seed: int = SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """n real images of the pair's dataset (a seeded sample of the split), as the pair's (inputs, targets)."""
    dm = datamodule(pair.dataset)
    data = {"train": dm.train_set, "test": dm.test_set}[split]
    generator = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(data), generator=generator)[:n]
    images, labels = data.images[idx], data.labels[idx]
    if tuple(images.shape[1:]) != tuple(pair.input_shape):
        raise ValueError(f"{pair.name}: {pair.dataset} images are {tuple(images.shape[1:])}, the pair declares {pair.input_shape}")
    make = pair.make_batch or default_batch
    return make(pair, images, labels, dm, generator)


def nhwc(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.permute(0, *range(2, x.dim()), 1).numpy()) if x.dim() > 2 else x.numpy()


# --- models ------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def keras_float64():
    """Keras layers, losses and optimizers built and run inside compute in float64, on every backend.

    The public settings are the dtype policy and ``floatx`` (the policy is what new layers take; it is only
    derived from ``floatx`` the first time it is read). The rest is per backend, set for the duration only:

    * like JAX without x64, Keras' type promotion maps float64 to float32 on every backend but TensorFlow
      (``keras.src.backend.common.dtypes.BIT64_TO_BIT32_DTYPE``), so BatchNormalization, which computes in
      ``result_type(input dtype, "float32")``, would still round to float32;
    * torch: the backend hands convolutions channels_last tensors (a speed choice), and torch's float64 CPU
      convolution cannot take a channels_last kernel with one output channel in its backward pass ("slow_conv2d:
      grad_weight must be contiguous"); float64 tensors stay in their layout here, which changes no value;
    * JAX: 64-bit types exist only with ``jax_enable_x64`` (without it every float64 array is float32);
    * TensorFlow: nothing more (its CPU kernels take float64 as they are).
    """
    from keras.src.backend.common import dtypes

    table = getattr(dtypes, "BIT64_TO_BIT32_DTYPE", None)
    if not isinstance(table, dict) or "float64" not in table:
        raise RuntimeError(f"check 4 cannot switch Keras {keras.__version__} to float64: its internals changed")
    restore: list[Callable[[], None]] = []
    backend = keras.backend.backend()
    if backend == "torch":
        from keras.src.backend.torch import nn as torch_nn

        to_channels_last = getattr(torch_nn, "_maybe_convert_to_channels_last", None)
        if to_channels_last is None:
            raise RuntimeError(f"check 4 cannot switch Keras {keras.__version__} to float64: its internals changed")

        def keep_float64_layout(tensor):
            return tensor if tensor.dtype == torch.float64 else to_channels_last(tensor)

        torch_nn._maybe_convert_to_channels_last = keep_float64_layout
        restore.append(lambda: setattr(torch_nn, "_maybe_convert_to_channels_last", to_channels_last))
    elif backend == "jax":
        import jax

        x64 = bool(jax.config.read("jax_enable_x64"))
        jax.config.update("jax_enable_x64", True)
        restore.append(lambda: jax.config.update("jax_enable_x64", x64))

    policy, floatx, promoted = keras.config.dtype_policy(), keras.config.floatx(), table["float64"]
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    table["float64"] = "float64"
    try:
        yield
    finally:
        table["float64"] = promoted
        keras.config.set_dtype_policy(policy)
        keras.config.set_floatx(floatx)
        for undo in reversed(restore):
            undo()


def build(pair: ModelPair, dtype: torch.dtype = torch.float32) -> tuple[nn.Module, keras.Model]:
    """Both models, freshly initialised from the same seed, on the CPU; the Keras one in ``keras.config.floatx()``
    (call inside ``keras_float64()`` for float64)."""
    keras.utils.set_random_seed(SEED)
    torch_model = pair.torch_model().to(dtype).cpu()
    keras_model = pair.keras_model()
    if not keras_model.built:
        c, *spatial = pair.input_shape
        keras_model.build((None, *spatial, c))
    return torch_model, keras_model


def perturb_torch(model: nn.Module, seed: int = SEED) -> None:
    """Random biases and BatchNorm statistics: fresh layers hold zeros and ones there, which would hide a
    missing bias or swapped statistics from check 3."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                if m.affine:
                    m.weight.copy_(0.5 + torch.rand(m.weight.shape, generator=g))
                m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(0.5 + 1.5 * torch.rand(m.running_var.shape, generator=g))
            bias = getattr(m, "bias", None)
            if isinstance(bias, torch.Tensor):
                bias.add_(0.1 * torch.randn(bias.shape, generator=g))


def perturb_keras(model: keras.Model, seed: int = SEED) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            if layer.scale:
                layer.gamma.assign(0.5 + rng.random(layer.gamma.shape, dtype=np.float32))
            layer.moving_mean.assign(0.2 * rng.standard_normal(layer.moving_mean.shape, dtype=np.float32))
            layer.moving_variance.assign(0.5 + 1.5 * rng.random(layer.moving_variance.shape, dtype=np.float32))
        bias = getattr(layer, "bias", None) if not isinstance(layer, keras.layers.BatchNormalization) else layer.beta
        if bias is not None:
            bias.assign(keras.ops.convert_to_numpy(bias) + 0.1 * rng.standard_normal(bias.shape, dtype=np.float32))


def _count_torch(module: nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    frozen = sum(p.numel() for p in module.parameters() if not p.requires_grad)
    # Floating-point buffers are statistics (BatchNorm's); integer and boolean ones are counters and flags
    # (num_batches_tracked, WhitenedCNN's ``whitened``), which Keras has no twin of.
    buffers = sum(b.numel() for b in module.buffers() if b.is_floating_point())
    return trainable, frozen + buffers


def _count_keras(obj) -> tuple[int, int]:
    return (
        sum(math.prod(w.shape) for w in obj.trainable_weights),
        sum(math.prod(w.shape) for w in obj.non_trainable_weights),
    )


# --- check 1 -----------------------------------------------------------------------------------------------


def check_parameters(pair: ModelPair) -> list[Row]:
    torch_model, keras_model = build(pair)
    (t_tr, t_nt), (k_tr, k_nt) = _count_torch(torch_model), _count_keras(keras_model)
    rows = [
        Row("1 parameters: trainable", f"torch {t_tr:,} / Keras {k_tr:,}", "equal", t_tr == k_tr, t_tr),
        Row("1 parameters: non-trainable", f"torch {t_nt:,} / Keras {k_nt:,}", "equal", t_nt == k_nt, t_nt),
    ]
    pairs = layer_pairs(torch_model, keras_model, pair.input_shape)
    bad = [
        f"{p.name}: torch {t} / Keras {k} (trainable, non-trainable)"
        for p in pairs
        if (t := _count_torch(p.torch_layer)) != (k := _count_keras(p.keras_layer))
    ]
    value = f"{len(pairs)} layers agree" if not bad else "; ".join(bad)
    rows.append(Row("1 parameters: per layer", value, "equal", not bad, len(bad)))
    return rows


# --- check 2 -----------------------------------------------------------------------------------------------


def _fmt_shape(shape) -> str:
    return "(" + ", ".join("N" if i == 0 else str(d) for i, d in enumerate(shape)) + ")"


def check_shapes(pair: ModelPair) -> list[Row]:
    torch_model, keras_model = build(pair)
    pairs = layer_pairs(torch_model, keras_model, pair.input_shape)
    x, _ = real_batch(pair, "test", 4)
    torch_model.eval()
    t_out = torch_trace(torch_model, x, [p.torch_name for p in pairs])
    k_out = keras_trace(keras_model, nhwc(x))
    bad = []
    for p in pairs:
        t_shape = tuple(t_out[p.torch_name][1].shape)
        k_shape = keras_shape_in_torch_layout(k_out[p.name].shape)
        if t_shape != k_shape:
            bad.append(
                f"{p.name}: torch {_fmt_shape(t_shape)} vs Keras {_fmt_shape(k_out[p.name].shape)} "
                f"(= {_fmt_shape(k_shape)} in NCHW)"
            )
    final = _fmt_shape(t_out[pairs[-1].torch_name][1].shape)
    value = f"{len(pairs)} layers agree, output {final}" if not bad else "; ".join(bad)
    return [Row("2 output shapes per layer (NHWC -> NCHW)", value, "equal", not bad, len(bad))]


# --- check 3 -----------------------------------------------------------------------------------------------


def layer_differences(pairs: list[LayerPair], torch_model: nn.Module, keras_model: keras.Model, x: torch.Tensor,
                      relative: bool = False) -> dict[str, float]:
    """Max |torch - Keras| of every corresponding layer's output (inference mode), in torch layout. ``relative``:
    divided by the layer's largest output where that exceeds 1 (float32 rounding grows with the values; a trained
    model's activations are larger than a fresh one's)."""
    torch_model.eval()
    t_out = torch_trace(torch_model, x, [p.torch_name for p in pairs])
    k_out = keras_trace(keras_model, nhwc(x), training=False)
    diffs = {}
    for p in pairs:
        t = t_out[p.torch_name][1].numpy()
        k = keras_to_torch_layout(k_out[p.name], p)
        diffs[p.name] = float(np.max(np.abs(t - k))) if t.shape == k.shape else math.inf
        if relative and t.size:
            diffs[p.name] /= max(1.0, float(np.max(np.abs(t))))
    return diffs


def _equivalence_row(pair: ModelPair, direction: str) -> Row:
    torch_model, keras_model = build(pair)
    label = f"3 outputs equal, weights {direction}"
    try:
        if direction == "torch -> Keras":
            perturb_torch(torch_model)
            torch_to_keras(torch_model, keras_model, pair.input_shape)
        else:
            perturb_keras(keras_model)
            keras_to_torch(keras_model, torch_model, pair.input_shape)
    except TransferError as err:
        return Row(label, f"transfer failed: {err}", f"<= {OUTPUT_TOL:g}", False)
    x, _ = real_batch(pair, "test", N_IMAGES)
    diffs = layer_differences(layer_pairs(torch_model, keras_model, pair.input_shape), torch_model, keras_model, x)
    worst = max(diffs, key=diffs.get)
    last = next(reversed(diffs))
    value = f"{diffs[worst]:.2e} (worst layer: {worst}; model output {diffs[last]:.2e})"
    return Row(label, value, f"<= {OUTPUT_TOL:g} every layer", diffs[worst] <= OUTPUT_TOL, diffs[worst])


def check_equivalence(pair: ModelPair) -> list[Row]:
    torch_model, keras_model = build(pair)
    pairs = layer_pairs(torch_model, keras_model, pair.input_shape)
    diffs = bn_differences(pairs) + dropout_differences(pairs)
    n_bn = sum(isinstance(p.torch_layer, nn.modules.batchnorm._BatchNorm) for p in pairs)
    n_do = sum(isinstance(p.torch_layer, nn.modules.dropout._DropoutNd) for p in pairs)
    value = f"{n_bn} BatchNorm, {n_do} Dropout layers agree" if not diffs else "; ".join(diffs)
    rows = [Row("3 hyper-parameters (BatchNorm eps, momentum; Dropout rate)", value, "equal", not diffs, len(diffs))]
    return rows + [_equivalence_row(pair, d) for d in ("torch -> Keras", "Keras -> torch")]


# --- check 4 -----------------------------------------------------------------------------------------------

# Mean-reduced losses, the same in both frameworks. Tests replace entries to plant mistakes.
TORCH_LOSSES: dict[str, Callable[[], nn.Module]] = {
    "cross_entropy": nn.CrossEntropyLoss,  # what lightning_impl.tasks.classifier.ImageClassifier trains with
    "mse": nn.MSELoss,
    "bce": nn.BCELoss,
}
KERAS_LOSSES: dict[str, Callable[[], keras.losses.Loss]] = {
    "cross_entropy": lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),  # as keras_ref.train
    "mse": keras.losses.MeanSquaredError,
    "bce": keras.losses.BinaryCrossentropy,
}


def torch_optimizer(params, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=0.0)


def keras_optimizer(lr: float) -> keras.optimizers.Optimizer:
    return keras.optimizers.SGD(learning_rate=lr, momentum=0.0)


@contextlib.contextmanager
def dropout_off(torch_model: nn.Module, keras_model: keras.Model):
    """Training mode without dropout. Each framework draws its masks from its own random stream, which
    cannot be matched; the rates are compared in check 3 instead."""
    dropouts = [m for m in torch_model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)]
    rates = {layer: layer.rate for layer in keras_model.layers if isinstance(layer, keras.layers.Dropout)}
    for m in dropouts:
        m.eval()
    for layer in rates:
        layer.rate = 0.0
    try:
        yield
    finally:
        for layer, rate in rates.items():
            layer.rate = rate


def train_torch(pair: ModelPair, model: nn.Module, batches) -> list[float]:
    """What a Lightning training step does for these models: loss(net(x), y), backward, optimizer step."""
    loss_fn, optimizer, losses = TORCH_LOSSES[pair.loss](), torch_optimizer(model.parameters(), SGD_LR), []
    for x, y in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def train_keras(pair: ModelPair, model: keras.Model, batches) -> list[float]:
    """Keras' own path: compile + train_on_batch runs the same train_step as model.fit (loss reduction,
    gradient, optimizer update, BatchNorm moving statistics), so the check covers what keras_ref.train runs."""
    model.compile(optimizer=keras_optimizer(SGD_LR), loss=KERAS_LOSSES[pair.loss]())
    return [float(model.train_on_batch(nhwc(x), nhwc(y) if pair.task == "denoising" else y.numpy())) for x, y in batches]


def _max_abs(tensors: list[torch.Tensor]) -> float:
    """The largest |value| over the tensors; a NaN counts as infinite. A diverged twin (NaN weights) is then the
    largest difference there is, not a value that Python's max() drops or keeps by the order it comes in."""
    return max((float(t.abs().nan_to_num(nan=math.inf).max()) for t in tensors if t.numel()), default=0.0)


def _relative_to_update(delta: float, update: float) -> float:
    """The largest weight difference in units of the largest update; infinite when no finite update was made."""
    return delta / update if 0 < update < math.inf else math.inf


def _relative(a: float, b: float) -> float:
    """|a - b| / |a|, infinite where either is not finite (a diverged loss is no match)."""
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(a), 1e-12)


def check_training(pair: ModelPair) -> list[Row]:
    if TRAIN_DTYPE not in (torch.float32, torch.float64):
        raise ValueError(f"check 4 runs in float32 or float64, not {TRAIN_DTYPE}")
    precision = keras_float64() if TRAIN_DTYPE == torch.float64 else contextlib.nullcontext()
    with precision:
        torch_model, keras_model = build(pair, TRAIN_DTYPE)
        perturb_torch(torch_model)
        torch_to_keras(torch_model, keras_model, pair.input_shape)
        pairs = layer_pairs(torch_model, keras_model, pair.input_shape)
        start = {k: v.clone() for k, v in torch_model.state_dict().items()}
        x, y = real_batch(pair, "train", pair.step_batch * SGD_STEPS)
        x, y = x.to(TRAIN_DTYPE), (y.to(TRAIN_DTYPE) if y.is_floating_point() else y)
        batches = list(zip(x.split(pair.step_batch), y.split(pair.step_batch)))

        torch_model.train()
        keras.utils.set_random_seed(SEED)
        with dropout_off(torch_model, keras_model):
            t_losses = train_torch(pair, torch_model, batches)
            k_losses = train_keras(pair, keras_model, batches)
        trained = {k: v.clone() for k, v in torch_model.state_dict().items()}
        keras_to_torch(keras_model, torch_model, pair.input_shape)  # Keras' weights, in torch layout
        ported = torch_model.state_dict()

    params = [n for n, _ in torch_model.named_parameters()]
    delta = _max_abs([trained[n] - ported[n] for n in params])
    update = _max_abs([trained[n] - start[n] for n in params])
    rel = _relative_to_update(delta, update)
    loss_rel = max(_relative(a, b) for a, b in zip(t_losses, k_losses))
    rows = [
        Row(
            f"4 training: weights after {SGD_STEPS} SGD steps (lr {SGD_LR}, batch {pair.step_batch}, {pair.loss}, "
            f"{str(TRAIN_DTYPE).removeprefix('torch.')})",
            f"max abs diff {delta:.2e} = {rel:.1e} x max update {update:.2e}",
            f"<= {TRAIN_TOL:g} x max update",
            rel <= TRAIN_TOL,
            rel,
        ),
        Row(
            "4 training: loss per step",
            f"max rel. diff {loss_rel:.1e} (step 1: {t_losses[0]:.4f} / {k_losses[0]:.4f})",
            f"<= {LOSS_TOL:g}",
            loss_rel <= LOSS_TOL,
            loss_rel,
        ),
    ]
    rows += _moving_statistics_rows(pairs, start, trained, ported, pair.step_batch)
    return rows


def _moving_statistics_rows(pairs: list[LayerPair], start, trained, ported, batch: int) -> list[Row]:
    """BatchNorm moving statistics after training. The mean follows the same rule in both frameworks.
    The variance does not: torch updates running_var with the unbiased batch variance (x n/(n-1), n values
    per channel), Keras with the biased one. With momentum m, after k steps from the same start s the gap is
    exactly torch - Keras = (torch - (1-m)^k s) / n (unroll both running averages: the unbiased one is the
    biased one times n/(n-1)); the row compares the measured gap with that, to the same bound as the weights.
    A wrong momentum or a variance convention other than these two moves it far outside."""
    bns = [p for p in pairs if isinstance(p.torch_layer, nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return []
    names = {p.name: p.torch_name for p in bns}
    mean_delta = _max_abs([trained[f"{names[p.name]}.running_mean"] - ported[f"{names[p.name]}.running_mean"] for p in bns])
    mean_update = _max_abs([trained[f"{names[p.name]}.running_mean"] - start[f"{names[p.name]}.running_mean"] for p in bns])
    mean_rel = mean_delta / mean_update if mean_update > 0 else math.inf
    worst, worst_rel = "", 0.0
    for p in bns:
        key = f"{names[p.name]}.running_var"
        n = batch * math.prod(p.torch_out_shape[2:])
        m, update = p.torch_layer.momentum, float((trained[key] - start[key]).abs().max())
        if m is None or update == 0:  # a cumulative average has no Keras twin (check 3 says so); no update: wrong
            rel = math.inf
        else:
            gap = (trained[key] - (1.0 - m) ** SGD_STEPS * start[key]) / n
            rel = float(((trained[key] - ported[key]) - gap).abs().max()) / update
        if rel >= worst_rel:
            worst, worst_rel = p.name, rel
    return [
        Row(
            "4 training: BatchNorm moving mean",
            f"max abs diff {mean_rel:.1e} x max update",
            f"<= {TRAIN_TOL:g} x max update",
            mean_rel <= TRAIN_TOL,
            mean_rel,
        ),
        Row(
            "4 training: BatchNorm moving variance (torch unbiased, Keras biased)",
            f"torch - Keras vs (torch - (1-m)^{SGD_STEPS} start)/n: max abs diff {worst_rel:.1e} x max update"
            + (f" (worst layer: {worst})" if worst else ""),
            f"<= {TRAIN_TOL:g} x max update",
            worst_rel <= TRAIN_TOL,
            worst_rel,
        ),
    ]


# --- all of them -------------------------------------------------------------------------------------------

def check_recipe(pair: ModelPair) -> list[Row]:
    """Check 6 (parity.recipe_checks): the recipe around the model, each framework's own trainer."""
    from parity.recipe_checks import check_recipe as run

    return run(pair)


CHECKS: dict[str, Callable[[ModelPair], list[Row]]] = {
    "parameters": check_parameters,
    "shapes": check_shapes,
    "equivalence": check_equivalence,
    "training": check_training,
    "recipe": check_recipe,
}
NUMBERS = {"parameters": 1, "shapes": 2, "equivalence": 3, "training": 4, "recipe": 6}  # 5 is accuracy (parity.accuracy)


@contextlib.contextmanager
def one_thread():
    """The checks' models and batches are tiny: one thread is ~10x faster than two on a busy 2-core machine
    (measured), where threads mostly wait for each other; it also fixes the summation order."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def run_checks(pair: ModelPair, names: list[str] | None = None) -> list[Row]:
    """The rows of the named checks (default: 1-4). A pair whose layers cannot be matched fails each check
    with the reason instead of stopping the run."""
    rows = []
    with keras.device("cpu"), one_thread():
        for name in names or list(CHECKS):
            try:
                rows += CHECKS[name](pair)
            except (LayerMismatch, TransferError, NotImplementedError) as err:
                rows.append(Row(f"{NUMBERS[name]} {name}", f"cannot run: {err}", "-", False))
    return rows
