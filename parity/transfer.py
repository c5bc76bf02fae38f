"""Copy weights Keras -> torch and torch -> Keras, layer by layer, so that both models compute the same function.

Layouts (torch <-> Keras):
    Conv2d            weight (out, in, kh, kw)  <-> kernel (kh, kw, in, out)
    ConvTranspose2d   weight (in, out, kh, kw)  <-> kernel (kh, kw, out, in)   (no spatial flip in either)
    Linear            weight (out, in)          <-> kernel (in, out); after a Flatten of a (C, H, W) tensor the
                      kernel's rows are also permuted from torch's (C, H, W) order to Keras' (H, W, C) order
    BatchNorm1d/2d    weight, bias, running_mean, running_var <-> gamma, beta, moving_mean, moving_variance
                      (torch's num_batches_tracked is a step counter, not a statistic: nothing to copy).
BatchNorm epsilon and momentum are hyper-parameters of the model definitions, not weights: `bn_differences`
compares them (Keras momentum = 1 - torch momentum) and the parity checks report any difference.
Layers without weights (activations, pooling, Flatten, Dropout) need nothing.
"""

from __future__ import annotations

from typing import Callable

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras
import numpy as np
import torch
from torch import nn

from parity.shapes import LayerPair, annotate, corresponding_layers


class TransferError(ValueError):
    """The two layers cannot hold the same weights (different type, shape or bias)."""


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _assign_keras(pair: LayerPair, var, value: np.ndarray, what: str) -> None:
    if tuple(var.shape) != value.shape:
        raise TransferError(f"{pair.name}: {what} from torch has shape {value.shape}, Keras expects {tuple(var.shape)}")
    var.assign(value.astype(keras.backend.standardize_dtype(var.dtype)))  # float32, or float64 in check 4


def _assign_torch(pair: LayerPair, tensor: torch.Tensor, value: np.ndarray, what: str) -> None:
    if tuple(tensor.shape) != value.shape:
        raise TransferError(f"{pair.name}: {what} from Keras has shape {value.shape}, torch expects {tuple(tensor.shape)}")
    with torch.no_grad():
        tensor.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def _expect(pair: LayerPair, keras_cls: type, torch_bias: bool, keras_bias: bool) -> None:
    if not isinstance(pair.keras_layer, keras_cls):
        raise TransferError(
            f"{pair.name}: torch {type(pair.torch_layer).__name__} pairs with Keras {keras_cls.__name__}, "
            f"found {type(pair.keras_layer).__name__}"
        )
    if torch_bias != keras_bias:
        raise TransferError(f"{pair.name}: bias in {'torch' if torch_bias else 'Keras'} only")


def _permute_rows(a: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    """torch feature order -> Keras feature order along axis 0 (Keras row k is torch row order[k])."""
    return a if order is None else a[order]


def _unpermute_rows(a: np.ndarray, order: np.ndarray | None) -> np.ndarray:
    if order is None:
        return a
    out = np.empty_like(a)
    out[order] = a
    return out


# --- one pair of functions per torch layer type: (torch -> Keras, Keras -> torch) -------------------------


def conv_kernel_to_keras(w: np.ndarray) -> np.ndarray:
    return w.transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)


def conv_kernel_to_torch(k: np.ndarray) -> np.ndarray:
    return k.transpose(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)


def _conv_t2k(p: LayerPair) -> None:
    t, k = p.torch_layer, p.keras_layer
    if t.groups != 1:
        raise TransferError(f"{p.name}: grouped convolutions are not mapped")
    _expect(p, keras.layers.Conv2D, t.bias is not None, k.use_bias)
    _assign_keras(p, k.kernel, conv_kernel_to_keras(_np(t.weight)), "kernel")
    if t.bias is not None:
        _assign_keras(p, k.bias, _np(t.bias), "bias")


def _conv_k2t(p: LayerPair) -> None:
    t, k = p.torch_layer, p.keras_layer
    _expect(p, keras.layers.Conv2D, t.bias is not None, k.use_bias)
    _assign_torch(p, t.weight, conv_kernel_to_torch(keras.ops.convert_to_numpy(k.kernel)), "kernel")
    if t.bias is not None:
        _assign_torch(p, t.bias, keras.ops.convert_to_numpy(k.bias), "bias")


def _deconv_t2k(p: LayerPair) -> None:
    t, k = p.torch_layer, p.keras_layer
    if t.groups != 1:
        raise TransferError(f"{p.name}: grouped transposed convolutions are not mapped")
    _expect(p, keras.layers.Conv2DTranspose, t.bias is not None, k.use_bias)
    _assign_keras(p, k.kernel, _np(t.weight).transpose(2, 3, 1, 0), "kernel")  # (in, out, kh, kw) -> (kh, kw, out, in)
    if t.bias is not None:
        _assign_keras(p, k.bias, _np(t.bias), "bias")


def _deconv_k2t(p: LayerPair) -> None:
    t, k = p.torch_layer, p.keras_layer
    _expect(p, keras.layers.Conv2DTranspose, t.bias is not None, k.use_bias)
    _assign_torch(p, t.weight, keras.ops.convert_to_numpy(k.kernel).transpose(3, 2, 0, 1), "kernel")
    if t.bias is not None:
        _assign_torch(p, t.bias, keras.ops.convert_to_numpy(k.bias), "bias")


def _dense_t2k(p: LayerPair) -> None:
    t, k = p.torch_layer, p.keras_layer
    _expect(p, keras.layers.Dense, t.bias is not None, k.use_bias)
    _assign_keras(p, k.kernel, _permute_rows(_np(t.weight).T, p.in_flat_order), "kernel")
    if t.bias is not None:
        _assign_keras(p, k.bias, _np(t.bias), "bias")


def _dense_k2t(p: LayerPair) -> None:
    t, k = p.torch_layer, p.keras_layer
    _expect(p, keras.layers.Dense, t.bias is not None, k.use_bias)
    _assign_torch(p, t.weight, _unpermute_rows(keras.ops.convert_to_numpy(k.kernel), p.in_flat_order).T, "kernel")
    if t.bias is not None:
        _assign_torch(p, t.bias, keras.ops.convert_to_numpy(k.bias), "bias")


def _bn_vars(p: LayerPair) -> list[tuple[str, str]]:
    """(torch attribute, Keras attribute) of the weights both sides hold."""
    t, k = p.torch_layer, p.keras_layer
    _expect(p, keras.layers.BatchNormalization, t.affine, k.scale or k.center)
    if t.affine and not (k.scale and k.center):
        raise TransferError(f"{p.name}: torch BatchNorm has both scale and shift, Keras only one of them")
    if not t.track_running_stats:
        raise TransferError(f"{p.name}: torch BatchNorm without running statistics has no Keras twin")
    names = [("running_mean", "moving_mean"), ("running_var", "moving_variance")]
    return ([("weight", "gamma"), ("bias", "beta")] if t.affine else []) + names


def _bn_t2k(p: LayerPair) -> None:
    for t_attr, k_attr in _bn_vars(p):
        value = _permute_rows(_np(getattr(p.torch_layer, t_attr)), p.in_flat_order)
        _assign_keras(p, getattr(p.keras_layer, k_attr), value, k_attr)


def _bn_k2t(p: LayerPair) -> None:
    for t_attr, k_attr in _bn_vars(p):
        value = _unpermute_rows(keras.ops.convert_to_numpy(getattr(p.keras_layer, k_attr)), p.in_flat_order)
        _assign_torch(p, getattr(p.torch_layer, t_attr), value, t_attr)


# Tests replace entries here to plant mistakes and show the checks catch them.
CONVERTERS: dict[type, tuple[Callable[[LayerPair], None], Callable[[LayerPair], None]]] = {
    nn.Conv2d: (_conv_t2k, _conv_k2t),
    nn.ConvTranspose2d: (_deconv_t2k, _deconv_k2t),
    nn.Linear: (_dense_t2k, _dense_k2t),
    nn.BatchNorm1d: (_bn_t2k, _bn_k2t),
    nn.BatchNorm2d: (_bn_t2k, _bn_k2t),
}


def _has_state(module: nn.Module) -> bool:
    buffers = [n for n, _ in module.named_buffers(recurse=False) if n != "num_batches_tracked"]
    return any(True for _ in module.parameters(recurse=False)) or bool(buffers)


def _converter(pair: LayerPair, direction: int) -> Callable[[LayerPair], None] | None:
    for cls in type(pair.torch_layer).__mro__:
        if cls in CONVERTERS:
            return CONVERTERS[cls][direction]
    if _has_state(pair.torch_layer) or pair.keras_layer.weights:
        raise TransferError(
            f"{pair.name}: no weight mapping for torch {type(pair.torch_layer).__name__} / "
            f"Keras {type(pair.keras_layer).__name__}; add one to parity.transfer.CONVERTERS"
        )
    return None


def layer_pairs(torch_model: nn.Module, keras_model: keras.Model, input_shape: tuple[int, ...]) -> list[LayerPair]:
    return annotate(corresponding_layers(torch_model, keras_model), torch_model, input_shape)


def torch_to_keras(torch_model: nn.Module, keras_model: keras.Model, input_shape: tuple[int, ...]) -> None:
    for pair in layer_pairs(torch_model, keras_model, input_shape):
        if (convert := _converter(pair, 0)) is not None:
            convert(pair)


def keras_to_torch(keras_model: keras.Model, torch_model: nn.Module, input_shape: tuple[int, ...]) -> None:
    for pair in layer_pairs(torch_model, keras_model, input_shape):
        if (convert := _converter(pair, 1)) is not None:
            convert(pair)


def bn_differences(pairs: list[LayerPair]) -> list[str]:
    """BatchNorm epsilon and momentum that disagree (Keras momentum weighs the old statistic: 1 - torch's)."""
    diffs = []
    for p in pairs:
        t, k = p.torch_layer, p.keras_layer
        if not isinstance(t, nn.modules.batchnorm._BatchNorm) or not isinstance(k, keras.layers.BatchNormalization):
            continue
        if t.momentum is None:
            diffs.append(f"{p.name}: torch momentum=None (cumulative average) has no Keras twin")
        elif not np.isclose(k.momentum, 1.0 - t.momentum, rtol=0, atol=1e-7):
            diffs.append(f"{p.name}: momentum torch {t.momentum} vs Keras {k.momentum} (expects {1 - t.momentum:g})")
        if not np.isclose(k.epsilon, t.eps, rtol=1e-6, atol=0):
            diffs.append(f"{p.name}: epsilon torch {t.eps:g} vs Keras {k.epsilon:g}")
    return diffs


def dropout_differences(pairs: list[LayerPair]) -> list[str]:
    diffs = []
    for p in pairs:
        t, k = p.torch_layer, p.keras_layer
        if isinstance(t, nn.modules.dropout._DropoutNd) != isinstance(k, keras.layers.Dropout):
            diffs.append(f"{p.name}: Dropout in one framework only")
        elif isinstance(t, nn.modules.dropout._DropoutNd) and not np.isclose(t.p, k.rate):
            diffs.append(f"{p.name}: rate torch {t.p} vs Keras {k.rate}")
    return diffs
