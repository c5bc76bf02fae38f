"""The Keras twins trained as torch trains the Lightning models: torch's initialisation and torch's optimiser updates.

Keras' defaults differ from torch's where it matters for a comparison of the two frameworks:

* initialisation: Keras draws kernels from glorot_uniform and sets biases to zero; torch's Conv2d, Linear and
  ConvTranspose2d draw both from U(±1/√fan_in) (kaiming_uniform with a = √5 for the weight). `torch_init` redraws
  every layer that kept Keras' default kernel initialiser (a layer given an initialiser of its own, such as the
  U-Net's zero head, keeps it), with torch's fan_in (ConvTranspose2d: torch counts its *output* channels);
* Adam / AdamW: Keras adds ε to √v and folds both bias corrections into the step size, torch adds ε to √v̂
  (the bias-corrected second moment): the effective ε differs by 1/√(1-β₂ᵗ) (`TorchAdam`, `TorchAdamW`);
* SGD with momentum: torch keeps v = μv + g and steps p -= lr·v, Keras v = μv - lr·g and p += v; the two agree
  only while the learning rate is constant (`TorchSGD`); torch's weight_decay for Adam and SGD is an L2 term added
  to the gradient (coupled), which Keras' own ``weight_decay`` is not;
* a learning rate of their own for the normalisation layers (a recipe's ``model.norm_lr_scale``, torch parameter
  groups in lightning_impl.tasks.schedules): Keras has no parameter groups, so `TorchSGD` and `TorchAdam` step the
  variables given to ``scale_norms`` at lr × scale with their weight decay ÷ scale, as torch's second group does.

parity's check 6 ("recipe") proves each of these against torch: distributions of the initial weights, the
optimiser's canonical description, the learning rate at every step, and steps of each framework's own optimiser
and schedule from copied weights.
"""

from __future__ import annotations

import math

import numpy as np

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras
from keras import ops

# The layers torch initialises with U(±1/√fan_in) for weight and bias; every other layer starts as in torch
# already (BatchNorm: γ = 1, β = 0 in both).
_DENSE_OR_CONV = (keras.layers.Dense, keras.layers.Conv2D, keras.layers.Conv2DTranspose)


def torch_fan_in(layer: keras.layers.Layer) -> int:
    """torch's fan_in of the twin of ``layer`` (torch.nn.init._calculate_fan_in_and_fan_out on its weight)."""
    shape = tuple(layer.kernel.shape)
    if isinstance(layer, keras.layers.Conv2DTranspose):  # Keras (kh, kw, out, in); torch (in, out, kh, kw): dim 1
        return int(shape[0] * shape[1] * shape[2])
    return int(np.prod(shape[:-1]))  # Dense (in, out); Conv2D (kh, kw, in, out)


def _default_kernel(layer: keras.layers.Layer) -> bool:
    return type(layer.kernel_initializer) is keras.initializers.GlorotUniform


def torch_init(model: keras.Model, seed: int) -> keras.Model:
    """Redraw ``model``'s convolution and dense weights as torch draws them, from a generator seeded by ``seed``
    (the same draws on every Keras backend)."""
    rng = np.random.default_rng(seed)
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if not isinstance(layer, _DENSE_OR_CONV) or not layer.built or not _default_kernel(layer):
            continue
        bound = 1.0 / np.sqrt(torch_fan_in(layer))
        layer.kernel.assign(rng.uniform(-bound, bound, tuple(layer.kernel.shape)).astype(layer.kernel.dtype))
        if layer.use_bias:
            layer.bias.assign(rng.uniform(-bound, bound, tuple(layer.bias.shape)).astype(layer.bias.dtype))
    return model


# The layers whose trainable variables a recipe's norm_lr_scale speeds up (torch: _BatchNorm, GroupNorm, LayerNorm).
_NORMS = (keras.layers.BatchNormalization, keras.layers.GroupNormalization, keras.layers.LayerNormalization)


def norm_variables(model: keras.Model) -> list:
    """The trainable variables of ``model``'s normalisation layers: torch's second parameter group under
    ``norm_lr_scale`` (lightning_impl.tasks.schedules.parameter_groups)."""
    return [v for layer in model._flatten_layers(include_self=False, recursive=True) if isinstance(layer, _NORMS)
            for v in layer.trainable_variables]


class _CoupledDecay:
    """torch's weight_decay of Adam and SGD: ``g += wd · p`` before the update (an L2 term, not decoupled); and
    torch's parameter group of normalisation variables (``scale_norms``): lr × scale, weight decay ÷ scale."""

    norm_lr_scale = 1.0
    _scaled: frozenset = frozenset()

    def scale_norms(self, variables, scale: float) -> None:
        """Step ``variables`` (norm_variables of the model) at the learning rate × ``scale``, their weight decay
        divided by it, as torch's ``{"params": norms, "lr": lr * scale, "weight_decay": wd / scale}``."""
        self.norm_lr_scale = float(scale)
        self._scaled = frozenset(id(v) for v in variables) if scale != 1.0 else frozenset()

    def _factor(self, variable) -> float:
        return self.norm_lr_scale if id(variable) in self._scaled else 1.0

    def _with_decay(self, gradient, variable):
        gradient = ops.cast(gradient, variable.dtype)
        if self.l2:
            gradient = ops.add(gradient, ops.multiply(variable, _constant(self.l2 / self._factor(variable), variable)))
        return gradient

    def _grouped(self, torch, grads, params, variables, lr: float) -> None:
        """``_foreach_step`` once per learning-rate group (one group unless ``scale_norms`` made two)."""
        groups: dict[float, list] = {}
        for item in zip(grads, params, variables):
            groups.setdefault(self._factor(item[2]), []).append(item)
        for factor, items in groups.items():
            g, p, v = (list(column) for column in zip(*items))
            if self.l2:
                g = torch._foreach_add(g, p, alpha=self.l2 / factor)
            self._foreach_step(torch, g, p, v, lr * factor)


def _adam_step(opt, gradient, variable, learning_rate) -> None:
    """torch.optim.Adam's update: p -= lr · m̂ / (√v̂ + ε), with m̂ = m / (1-β₁ᵗ) and v̂ = v / (1-β₂ᵗ)."""
    lr = ops.cast(learning_rate, variable.dtype)
    t = ops.cast(opt.iterations + 1, variable.dtype)
    b1, b2 = _constant(opt.beta_1, variable), _constant(opt.beta_2, variable)
    m = opt._momentums[opt._get_variable_index(variable)]
    v = opt._velocities[opt._get_variable_index(variable)]
    opt.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - b1))
    opt.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - b2))
    m_hat = ops.divide(m, 1 - ops.power(b1, t))
    v_hat = ops.divide(v, 1 - ops.power(b2, t))
    opt.assign_sub(variable, ops.divide(ops.multiply(m_hat, lr), ops.add(ops.sqrt(v_hat), _constant(opt.epsilon, variable))))


def _constant(value: float, variable):
    """A hyper-parameter in the variable's dtype directly (ops.cast of a Python float passes through float32:
    0.9 becomes 0.89999998, a 2e-7 error in float64 training)."""
    return ops.convert_to_tensor(float(value), dtype=variable.dtype)


class _ForeachOnTorch:
    """On the torch backend, all variables in one call of torch's ``_foreach`` kernels, the formulas of torch's own
    foreach implementations (torch/optim/adam.py, sgd.py: ``_multi_tensor_*``), as Keras' own torch optimizers
    do for its updates; a loop over the variables in Keras ops was ~1.8x slower per training step. Other backends
    use ``update_step``, the same update variable by variable."""

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if keras.backend.backend() != "torch":
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        import torch

        with torch.no_grad():
            params = [v.value for v in trainable_variables]
            grads = [g.to(p.dtype) for g, p in zip(grads, params)]
            if isinstance(self, _CoupledDecay):  # weight decay and the norms' group, then the update
                self._grouped(torch, grads, params, trainable_variables, float(learning_rate))
            else:
                self._foreach_step(torch, grads, params, trainable_variables, float(learning_rate))


def _foreach_adam(opt, torch, grads, params, variables, lr: float) -> None:
    b1, b2, eps = float(opt.beta_1), float(opt.beta_2), float(opt.epsilon)
    t = int(opt.iterations) + 1
    m = [opt._momentums[opt._get_variable_index(v)].value for v in variables]
    v2 = [opt._velocities[opt._get_variable_index(v)].value for v in variables]
    torch._foreach_lerp_(m, grads, 1 - b1)  # m = b1 m + (1 - b1) g, as torch writes it
    torch._foreach_mul_(v2, b2)
    torch._foreach_addcmul_(v2, grads, grads, value=1 - b2)
    denom = torch._foreach_sqrt(v2)
    torch._foreach_div_(denom, math.sqrt(1 - b2 ** t))
    torch._foreach_add_(denom, eps)
    torch._foreach_addcdiv_(params, m, denom, value=-lr / (1 - b1 ** t))


class TorchAdam(_ForeachOnTorch, _CoupledDecay, keras.optimizers.Adam):
    """Keras' Adam with torch.optim.Adam's update (ε added to √v̂), its defaults (Keras' ε is 1e-7) and its coupled
    ``weight_decay``."""

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, l2: float = 0.0, **kwargs):
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, **kwargs)
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.multiply(ops.cast(learning_rate, variable.dtype), _constant(self._factor(variable), variable))
        _adam_step(self, self._with_decay(gradient, variable), variable, lr)

    def _foreach_step(self, torch, grads, params, variables, lr: float) -> None:  # decay added by _grouped
        _foreach_adam(self, torch, grads, params, variables, lr)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}


class TorchAdamW(_ForeachOnTorch, keras.optimizers.AdamW):
    """Keras' AdamW (decoupled decay p -= lr · wd · p first, as torch's) with torch's Adam update and defaults
    (Keras' own: ε 1e-7, weight_decay 0.004)."""

    def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.01, **kwargs):
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, weight_decay=weight_decay, **kwargs)

    def _apply_weight_decay(self, variables):  # Keras' own, with wd in the variable's dtype (see _constant)
        if self.weight_decay is None:
            return
        for variable in variables:
            if self._use_weight_decay(variable):
                lr = ops.cast(self.learning_rate, variable.dtype)
                variable.assign(variable - variable * _constant(self.weight_decay, variable) * lr)

    def update_step(self, gradient, variable, learning_rate):
        _adam_step(self, ops.cast(gradient, variable.dtype), variable, learning_rate)

    def _foreach_step(self, torch, grads, params, variables, lr: float) -> None:
        _foreach_adam(self, torch, grads, params, variables, lr)


class TorchSGD(_ForeachOnTorch, _CoupledDecay, keras.optimizers.SGD):
    """SGD in torch's convention: v = μv + g, then p -= lr · v (Nesterov: p -= lr · (g + μv)); ``l2`` as torch's
    weight_decay. The same as Keras' SGD at a constant learning rate, not under a schedule."""

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, l2: float = 0.0, **kwargs):
        super().__init__(learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)
        self.l2 = float(l2)

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.multiply(ops.cast(learning_rate, variable.dtype), _constant(self._factor(variable), variable))
        gradient = self._with_decay(gradient, variable)
        if self.momentum == 0:
            self.assign_sub(variable, ops.multiply(gradient, lr))
            return
        mu = _constant(self.momentum, variable)
        v = self.momentums[self._get_variable_index(variable)]
        self.assign(v, ops.add(ops.multiply(v, mu), gradient))
        step = ops.add(gradient, ops.multiply(v, mu)) if self.nesterov else v
        self.assign_sub(variable, ops.multiply(step, lr))

    def _foreach_step(self, torch, grads, params, variables, lr: float) -> None:  # decay added by _grouped
        if self.momentum != 0:
            mu = float(self.momentum)
            bufs = [self.momentums[self._get_variable_index(v)].value for v in variables]
            torch._foreach_mul_(bufs, mu)
            torch._foreach_add_(bufs, grads)
            grads = torch._foreach_add(grads, bufs, alpha=mu) if self.nesterov else bufs
        torch._foreach_add_(params, grads, alpha=-lr)

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}


def describe(optimizer: keras.optimizers.Optimizer) -> dict:
    """The optimiser reduced to what its update does (parity's check 6 compares it with torch's)."""
    name = type(optimizer).__name__
    out = {"class": {"TorchAdam": "Adam", "TorchAdamW": "AdamW", "TorchSGD": "SGD"}.get(name, name)}
    if isinstance(optimizer, keras.optimizers.Adam) or isinstance(optimizer, keras.optimizers.AdamW):
        torch_update = isinstance(optimizer, (TorchAdam, TorchAdamW))
        out |= {"betas": (float(optimizer.beta_1), float(optimizer.beta_2)), "eps": float(optimizer.epsilon),
                "eps_added_to": "sqrt(v_hat)" if torch_update else "sqrt(v)"}
    else:
        out |= {"momentum": float(optimizer.momentum), "nesterov": bool(optimizer.nesterov),
                "momentum_convention": "v = mu v + g; p -= lr v" if isinstance(optimizer, TorchSGD)
                else "v = mu v - lr g; p += v"}
    scaled = len(getattr(optimizer, "_scaled", ()))
    out["norm_lr_scale"] = (float(getattr(optimizer, "norm_lr_scale", 1.0)), scaled) if scaled else (1.0, 0)
    decoupled = float(optimizer.weight_decay or 0.0)
    coupled = float(getattr(optimizer, "l2", 0.0))
    out["weight_decay"] = (decoupled, "decoupled") if decoupled else ((coupled, "coupled (L2 in the gradient)")
                                                                      if coupled else (0.0, "none"))
    return out
