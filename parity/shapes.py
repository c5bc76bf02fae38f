"""Which torch layer is which Keras layer, what each one outputs, and how Keras' layout maps onto torch's.

Torch computes in NCHW, Keras in NHWC. Two facts turn one layout into the other, layer by layer:

* a tensor with spatial axes: Keras' last axis (channels) is torch's axis 1;
* after a Flatten of a (C, H, W) tensor the features are a permutation of each other: Keras flattens
  (H, W, C) and torch (C, H, W). The permutation holds through element-wise layers (activations,
  Dropout, BatchNorm1d) until a Linear/Dense layer mixes the features; that layer's kernel absorbs it
  (see parity.transfer), so its output is in the same order in both frameworks.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras
import numpy as np
import torch
from torch import nn


class LayerMismatch(ValueError):
    """The two models' layers do not correspond one-to-one by name and order."""


@dataclass
class LayerPair:
    name: str  # the Keras layer's name
    torch_name: str  # the torch module's dotted name (state_dict prefix)
    torch_layer: nn.Module
    keras_layer: keras.layers.Layer
    torch_out_shape: tuple[int, ...] = ()  # (N, C, H, W) or (N, F)
    # Keras flat index k holds torch flat index flat_order[k] for this layer's *output* (None: same order).
    flat_order: np.ndarray | None = None
    # The same for the layer's *input*: what a Linear/Dense (or BatchNorm1d) after a Flatten must absorb.
    in_flat_order: np.ndarray | None = None


def torch_leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if name and not any(True for _ in m.children())]


WIRING = (keras.layers.InputLayer, keras.layers.Concatenate, keras.layers.Add)


def corresponding_layers(torch_model: nn.Module, keras_model: keras.Model) -> list[LayerPair]:
    """Pair every torch leaf module with the Keras layer of the same name; order must agree too. A functional
    model's wiring (its input, concatenations, sums: what torch does in ``forward``, without weights) has no twin."""
    t_layers = torch_leaves(torch_model)
    k_layers = [layer for layer in keras_model.layers if not isinstance(layer, WIRING)]
    if any(isinstance(layer, keras.Model) for layer in k_layers):
        raise LayerMismatch("nested Keras models are not supported: list the layers in one model")
    k_names = [layer.name for layer in k_layers]
    t_names = [name if name in k_names else name.replace(".", "_") for name, _ in t_layers]
    if t_names != k_names:
        missing_in_keras = [n for n in t_names if n not in k_names]
        missing_in_torch = [n for n in k_names if n not in t_names]
        detail = (
            f"torch layers without a Keras twin: {missing_in_keras}; Keras layers without a torch twin: {missing_in_torch}"
            if missing_in_keras or missing_in_torch
            else f"same names, different order: torch {t_names} vs Keras {k_names}"
        )
        raise LayerMismatch(detail)
    return [LayerPair(name, t_name, module, layer) for name, (t_name, module), layer in zip(t_names, t_layers, k_layers)]


def flatten_order(chw: tuple[int, ...]) -> np.ndarray:
    """Keras flat index k -> torch flat index, for a Flatten of a torch (C, *spatial) tensor."""
    c, spatial = chw[0], chw[1:]
    return np.arange(int(np.prod(chw))).reshape(c, *spatial).transpose(*range(1, len(chw)), 0).ravel()


def torch_trace(model: nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(input, output) of every named leaf module (torch's dotted names) for the batch x, in the model's current mode."""
    modules = dict(model.named_modules())
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = []
    for name in names:
        module = modules[name]
        hooks.append(module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, (i[0], o))))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return seen


def keras_trace(model: keras.Model, x_nhwc: np.ndarray, training: bool = False) -> dict[str, np.ndarray]:
    """Output of every top-level Keras layer for the batch x."""
    layers = list(model.layers)
    probe = keras.Model(inputs=model.inputs, outputs=[layer.output for layer in layers])
    outs = probe([x_nhwc], training=training)  # a list: the probe's inputs are a list of one
    return {layer.name: keras.ops.convert_to_numpy(o) for layer, o in zip(layers, outs)}


def annotate(pairs: list[LayerPair], torch_model: nn.Module, input_shape: tuple[int, ...]) -> list[LayerPair]:
    """Fill in each pair's torch output shape and the feature orders a Flatten introduces (one dummy forward)."""
    was_training = torch_model.training
    torch_model.eval()
    like = next(torch_model.parameters(), torch.zeros(()))  # the dummy batch takes the model's device and dtype
    trace = torch_trace(torch_model, like.new_zeros(2, *input_shape), [p.torch_name for p in pairs])
    torch_model.train(was_training)
    order = None
    for p in pairs:
        if p.torch_name not in trace:
            raise LayerMismatch(f"torch layer {p.torch_name} is never called in forward()")
        t_in, t_out = trace[p.torch_name]
        p.torch_out_shape = tuple(t_out.shape)
        p.in_flat_order = order
        if isinstance(p.torch_layer, nn.Flatten) and t_in.dim() > 2:
            order = flatten_order(tuple(t_in.shape[1:]))
        elif isinstance(p.torch_layer, nn.Unflatten):
            # Keras' Reshape fills (H, W, C), torch's Unflatten (C, H, W): the Dense before it would need its
            # output units permuted. No pair needs it yet; refuse rather than compare the wrong elements.
            raise NotImplementedError(f"{p.name}: Unflatten/Reshape to a spatial tensor is not mapped yet")
        elif isinstance(p.torch_layer, nn.Linear) or t_out.dim() != 2:
            order = None
        p.flat_order = order
    return pairs


def keras_to_torch_layout(keras_out: np.ndarray, pair: LayerPair) -> np.ndarray:
    """A Keras layer output rearranged into the torch layout of the same layer's output."""
    if keras_out.ndim > 2:  # channels last -> channels first
        return np.moveaxis(keras_out, -1, 1)
    if pair.flat_order is not None:
        out = np.empty_like(keras_out)
        out[:, pair.flat_order] = keras_out
        return out
    return keras_out


def keras_shape_in_torch_layout(shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
    return (shape[0], shape[-1], *shape[1:-1]) if len(shape) > 2 else tuple(shape)
