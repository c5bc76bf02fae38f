"""Why parity check 4 trains in float64: how far float32 training drifts from itself, pair by pair.

    python -m parity.drift                                   # every registered pair
    python -m parity.drift --pairs improved_cnn_mnist --per-step

Check 4's setting (same perturbed start, same batches, plain SGD, Dropout off), trained in four ways:
torch float64 (the reference), torch float32, torch float32 with channels_last tensors (other kernels, so
another summation order: just as valid) and Keras float32. Printed: the largest weight difference after the
steps, relative to the largest weight change (check 4's measure). If torch float32 disagrees with itself as
much as with Keras, a float32 comparison cannot tell a framework difference from rounding.

``--per-step`` follows the float64 trajectory and, at each step, computes the float32 gradient from the same
weights: its largest error (relative to the model's largest gradient entry) and the number of ReLU inputs
whose sign float32 rounding flipped. A flipped unit changes which terms enter a weight gradient, not how they
are rounded, so a single flip can move a gradient by far more than rounding does.
"""

from __future__ import annotations

import argparse
import copy

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras
import torch
from torch import nn

from parity import checks
from parity.registry import ModelPair, all_pairs
from parity.shapes import torch_trace
from parity.transfer import keras_to_torch, torch_to_keras
from core import flags


def _start(pair: ModelPair):
    """Check 4's start: the perturbed torch model (float32), its Keras twin, the batches."""
    torch_model, keras_model = checks.build(pair)
    checks.perturb_torch(torch_model)
    torch_to_keras(torch_model, keras_model, pair.input_shape)
    x, y = checks.real_batch(pair, "train", pair.step_batch * checks.SGD_STEPS)
    return torch_model, keras_model, list(zip(x.split(pair.step_batch), y.split(pair.step_batch)))


def _cast(batches, dtype: torch.dtype, memory_format=torch.contiguous_format):
    return [
        (x.to(dtype).contiguous(memory_format=memory_format), y.to(dtype) if y.is_floating_point() else y)
        for x, y in batches
    ]


def _train_mode(model: nn.Module) -> nn.Module:
    model.train()
    for m in model.modules():  # as checks.dropout_off
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.eval()
    return model


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().double() for n, p in model.named_parameters()}


def drift(pair: ModelPair) -> dict[str, float]:
    """Weight differences after SGD_STEPS steps, relative to the float64 run's largest weight change."""
    torch_model, keras_model, batches = _start(pair)
    start = _params(torch_model)
    runs = {}
    for name, dtype, fmt in (
        ("torch float64", torch.float64, torch.contiguous_format),
        ("torch float32", torch.float32, torch.contiguous_format),
        ("torch float32 channels_last", torch.float32, torch.channels_last),
    ):
        model = _train_mode(copy.deepcopy(torch_model).to(dtype=dtype, memory_format=fmt))
        checks.train_torch(pair, model, _cast(batches, dtype, fmt))
        runs[name] = _params(model)
    with checks.dropout_off(torch_model, keras_model):
        checks.train_keras(pair, keras_model, batches)
    keras_to_torch(keras_model, torch_model, pair.input_shape)
    runs["Keras float32"] = _params(torch_model)

    ref = runs["torch float64"]
    update = max(float((ref[n] - start[n]).abs().max()) for n in ref)
    diff = lambda a, b: max(float((runs[a][n] - runs[b][n]).abs().max()) for n in ref) / update  # noqa: E731
    return {
        "torch float32 vs float64": diff("torch float32", "torch float64"),
        "torch float32 channels_last vs float64": diff("torch float32 channels_last", "torch float64"),
        "torch float32 vs torch float32 channels_last": diff("torch float32", "torch float32 channels_last"),
        "Keras float32 vs torch float32": diff("Keras float32", "torch float32"),
        "Keras float32 vs torch float64": diff("Keras float32", "torch float64"),
    }


def per_step(pair: ModelPair) -> list[tuple[int, float, str, int]]:
    """(step, max |float32 - float64 gradient| / max |gradient|, the parameter where it is worst, ReLU sign flips)."""
    torch_model, _, batches = _start(pair)
    ref = _train_mode(copy.deepcopy(torch_model).double())
    optimizer = checks.torch_optimizer(ref.parameters(), checks.SGD_LR)
    relus = [n for n, m in ref.named_modules() if isinstance(m, nn.ReLU)]
    out = []
    for step, ((x64, y64), (x32, y32)) in enumerate(zip(_cast(batches, torch.float64), batches), start=1):
        f32 = _train_mode(copy.deepcopy(ref).float())
        flips = 0
        if relus:
            a, b = torch_trace(f32, x32, relus), torch_trace(ref, x64, relus)
            flips = sum(int(((a[n][0] > 0) != (b[n][0] > 0)).sum()) for n in relus)
        loss = checks.TORCH_LOSSES[pair.loss]()
        loss(f32(x32), y32).backward()
        optimizer.zero_grad()
        loss(ref(x64), y64).backward()
        # Relative to the largest gradient entry anywhere (as check 4 measures weights): a parameter whose
        # gradient is zero in exact arithmetic (a bias before BatchNorm) must not divide by its own rounding.
        scale = max(float(q.grad.abs().max()) for q in ref.parameters())
        err, worst = max(
            (float((p.grad.double() - q.grad).abs().max()), n)
            for (n, p), (_, q) in zip(f32.named_parameters(), ref.named_parameters())
        )
        optimizer.step()
        out.append((step, err / scale, worst, flips))
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", nargs="+", help="registered pair names (default: all)")
    p.add_argument("--per-step", action="store_true", help="also the float32 gradient error and ReLU flips per step")
    args = p.parse_args(argv)
    pairs = all_pairs()
    unknown = [n for n in args.pairs or () if n not in pairs]
    if unknown:
        p.error(f"--pairs: unknown pairs {unknown}; registered: {sorted(pairs)}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    pairs = all_pairs()
    names = args.pairs or sorted(pairs)
    with keras.device("cpu"), checks.one_thread():  # as run_checks
        for name in names:
            print(f"\n## {name}: weights after {checks.SGD_STEPS} SGD steps, max |difference| / max |update|\n")
            print("| compared | drift |\n|---|---|")
            for label, value in drift(pairs[name]).items():
                print(f"| {label} | {value:.1e} |")
            if args.per_step:
                print("\n| step | float32 gradient error / max gradient | worst parameter | ReLU sign flips |")
                print("|---|---|---|---|")
                for step, err, worst, flips in per_step(pairs[name]):
                    print(f"| {step} | {err:.1e} | {worst} | {flips} |")


if __name__ == "__main__":
    main()
