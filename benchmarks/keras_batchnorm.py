"""Why a Keras epoch (torch backend) doubles with BatchNorm where torch's grows ~25 %: a minimal reproduction.

    python benchmarks/keras_batchnorm.py                              # all variants, 2 threads, 3 rounds
    python benchmarks/keras_batchnorm.py --profile                    # + the top ops of a few BN steps
    python benchmarks/keras_batchnorm.py --steps 5 --warmup 2 --rounds 1 --variants default   # smoke run

One small net, with and without BatchNorm after each convolution, on 28x28x1 inputs (random images, 10 random
labels; the speed does not depend on the values), batch 128, Adam, cross-entropy on logits:

    conv3x3-32 -> [BN] -> ReLU -> conv3x3-64 -> [BN] -> ReLU -> global average pool -> dense 10

(convolutions without bias where BN follows). Each configuration trains ``--warmup`` untimed steps, then
``--steps`` timed ones; rounds interleave all configurations, and the median ms/step is reported. Paths:

  torch        nn.Conv2d / nn.BatchNorm2d (momentum 0.1, eps 1e-5) in NCHW, torch.optim.Adam, a plain loop
  keras_fit    the Keras 3 twin (keras.layers.BatchNormalization), model.fit over (warmup + steps) batches
  keras_step   the same Keras model trained by a hand-written step: model(x, training=True), torch cross-entropy,
               backward and torch.optim.Adam over the Keras variables' torch parameters (no Keras trainer, no
               Keras optimizer: what is left is the layers' own forward and backward)

Keras BatchNormalization variants (``--variants``):

  default          Keras' defaults: momentum 0.99, epsilon 1e-3, synchronized=False, channels-last (NHWC)
  torch_momentum   momentum 0.9 and epsilon 1e-5, torch's convention (Keras' momentum weighs the old value)
  unsynchronized   synchronized=False spelt out (Keras 3's default: to show that it is not the cause)
  channels_first   the whole Keras model in NCHW (data_format="channels_first", BN axis=1), torch's layout
  fused            the project's keras_ref.batch_norm.FusedBatchNormalization (Keras' layer on torch's fused
                   kernel), torch's momentum and epsilon: what the Keras twins train with

Prints ms/step per (path, variant, BN on/off) and the BN overhead (BN on / BN off) per path and variant.
``--profile`` runs torch.profiler over ``--profile-steps`` steps of torch with BN and of Keras with and without
BN (train_on_batch, default variant) and prints the top ops by self CPU time: whether Keras' BN cost is its own
ops (moments as separate mean/var ops, moving-average updates as variable assignments) or the kernels. Timings
depend on the machine and on what else runs on it; nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from core import flags  # noqa: E402

BATCH = 128
WIDTHS = (32, 64)
LR = 1e-3
TORCH_BN = {"momentum": 0.1, "eps": 1e-5}
KERAS_VARIANTS = {  # keras.layers.BatchNormalization keyword arguments, and the data format
    "default": ({}, "channels_last"),
    "torch_momentum": ({"momentum": 1.0 - TORCH_BN["momentum"], "epsilon": TORCH_BN["eps"]}, "channels_last"),
    "unsynchronized": ({"synchronized": False}, "channels_last"),
    "channels_first": ({}, "channels_first"),
    "fused": ({"momentum": 1.0 - TORCH_BN["momentum"], "epsilon": TORCH_BN["eps"]}, "channels_last"),  # the project's
}
FUSED = ("fused",)  # variants built with keras_ref.batch_norm.FusedBatchNormalization (torch's kernel), not Keras' own


def data(n_batches: int, channels_first: bool = False, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = (n_batches * BATCH, 1, 28, 28) if channels_first else (n_batches * BATCH, 28, 28, 1)
    return rng.standard_normal(shape, dtype=np.float32), rng.integers(0, 10, n_batches * BATCH).astype("int64")


def torch_net(bn: bool) -> nn.Module:
    layers, c = [], 1
    for width in WIDTHS:
        layers += [nn.Conv2d(c, width, 3, padding=1, bias=not bn)]
        layers += [nn.BatchNorm2d(width, **TORCH_BN)] if bn else []
        layers += [nn.ReLU()]
        c = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))


def keras_net(bn: bool, variant: str = "default"):
    import keras
    from keras import layers

    kwargs, data_format = KERAS_VARIANTS[variant]
    channels_first = data_format == "channels_first"
    stack = [keras.Input((1, 28, 28) if channels_first else (28, 28, 1))]
    for width in WIDTHS:
        stack.append(layers.Conv2D(width, 3, padding="same", use_bias=not bn, data_format=data_format))
        if bn:
            if variant in FUSED:
                from keras_ref.batch_norm import FusedBatchNormalization

                stack.append(FusedBatchNormalization(**kwargs))
            else:
                stack.append(layers.BatchNormalization(axis=1 if channels_first else -1, **kwargs))
        stack.append(layers.ReLU())
    stack += [layers.GlobalAveragePooling2D(data_format=data_format), layers.Dense(10)]
    return keras.Sequential(stack)


def torch_path(bn: bool, steps: int, warmup: int, variant: str = "default") -> float:
    x, y = (torch.from_numpy(a) for a in data(warmup + steps, channels_first=True))
    net = torch_net(bn).train()
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        sl = slice(i * BATCH, (i + 1) * BATCH)
        loss = nn.functional.cross_entropy(net(x[sl]), y[sl])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return 1000 * (time.perf_counter() - start) / steps


def keras_fit(bn: bool, steps: int, warmup: int, variant: str = "default") -> float:
    import keras

    x, y = data(warmup + steps, channels_first=KERAS_VARIANTS[variant][1] == "channels_first")
    model = keras_net(bn, variant)
    model.compile(optimizer=keras.optimizers.Adam(LR), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            if batch == warmup:
                self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.end = time.perf_counter()

    timer = Timer()
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0, callbacks=[timer])
    return 1000 * (timer.end - timer.start) / steps


def keras_step(bn: bool, steps: int, warmup: int, variant: str = "default") -> float:
    x, y = (torch.from_numpy(a) for a in data(warmup + steps, channels_first=KERAS_VARIANTS[variant][1] == "channels_first"))
    model = keras_net(bn, variant)
    opt = torch.optim.Adam([v.value for v in model.trainable_variables], lr=LR)
    for i in range(warmup + steps):
        if i == warmup:
            start = time.perf_counter()
        sl = slice(i * BATCH, (i + 1) * BATCH)
        loss = nn.functional.cross_entropy(model(x[sl], training=True), y[sl])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return 1000 * (time.perf_counter() - start) / steps


PATHS = {"torch": torch_path, "keras_fit": keras_fit, "keras_step": keras_step}


def configurations(paths: list[str], variants: list[str]) -> list[tuple[str, str, bool]]:
    """(path, variant, bn): torch once each way; Keras per variant with BN, and without BN per data format."""
    out = []
    for path in paths:
        if path == "torch":
            out += [("torch", "-", False), ("torch", "-", True)]
            continue
        for variant in variants if path == "keras_fit" else [v for v in variants if v in ("default", "channels_first")]:
            if variant in ("default", "channels_first"):
                out.append((path, variant, False))
            out.append((path, variant, True))
    return out


def baseline(config: tuple[str, str, bool]) -> tuple[str, str, bool]:
    """The BN-off configuration a BN-on one is compared with: same path, same data format."""
    path, variant, _ = config
    if path == "torch":
        return (path, "-", False)
    return (path, "channels_first" if variant == "channels_first" else "default", False)


def profile(steps: int, row_limit: int) -> None:
    import keras
    from torch.profiler import ProfilerActivity, profile as torch_profile

    def torch_steps():
        x, y = (torch.from_numpy(a) for a in data(steps, channels_first=True))
        net = torch_net(True).train()
        opt = torch.optim.Adam(net.parameters(), lr=LR)
        for i in range(steps):
            sl = slice(i * BATCH, (i + 1) * BATCH)
            loss = nn.functional.cross_entropy(net(x[sl]), y[sl])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return lambda: None

    def keras_steps(bn):
        def run():
            x, y = data(steps + 1)
            model = keras_net(bn)
            model.compile(optimizer=keras.optimizers.Adam(LR),
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            model.train_on_batch(x[:BATCH], y[:BATCH])  # builds the optimizer and the train function, unprofiled
            return lambda: [model.train_on_batch(x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH])
                            for i in range(1, steps + 1)]
        return run

    for title, prepare in (("torch, BN", None), ("keras train_on_batch, BN (default)", keras_steps(True)),
                           ("keras train_on_batch, no BN", keras_steps(False))):
        if prepare is None:
            torch_steps()  # warm the kernels, unprofiled
            work = torch_steps
        else:
            work = prepare()
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            work()
        print(f"\n## top ops by self CPU time: {title}, {steps} steps of batch {BATCH}")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=row_limit))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS))
    p.add_argument("--variants", nargs="+", default=list(KERAS_VARIANTS), choices=list(KERAS_VARIANTS))
    p.add_argument("--threads", type=flags.positive_int, default=2)
    p.add_argument("--steps", type=flags.positive_int, default=30, help="timed steps per configuration and round")
    p.add_argument("--warmup", type=flags.non_negative_int, default=5, help="untimed steps before them")
    p.add_argument("--rounds", type=flags.positive_int, default=3)
    p.add_argument("--profile", action="store_true", help="also print torch.profiler's top ops of a few steps")
    p.add_argument("--profile-steps", type=flags.positive_int, default=5)
    p.add_argument("--profile-rows", type=flags.positive_int, default=20)
    p.add_argument("--json", metavar="FILE", help="also write every round's figures here")
    args = p.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    import keras

    configs = configurations(args.paths, args.variants)
    times = {c: [] for c in configs}
    for _ in range(args.rounds):
        for c in configs:
            path, variant, bn = c
            torch.manual_seed(0)
            keras.utils.set_random_seed(0)
            times[c].append(PATHS[path](bn, args.steps, args.warmup, variant if variant != "-" else "default"))
    med = {c: statistics.median(v) for c, v in times.items()}
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"keras {keras.__version__} ({keras.backend.backend()}), {args.threads} threads, batch {BATCH}, "
          f"{args.steps} timed steps after {args.warmup}, {args.rounds} rounds, median ms/step")
    print("| path | variant | BN | ms/step | per round |")
    print("|---|---|---|---:|---|")
    for c in configs:
        print(f"| {c[0]} | {c[1]} | {'on' if c[2] else 'off'} | {med[c]:.1f} | " + ", ".join(f"{t:.1f}" for t in times[c]) + " |")
    overhead = {}
    print("\n| path | variant | BN off ms | BN on ms | BN on / off |")
    print("|---|---|---:|---:|---:|")
    for c in configs:
        if c[2] and baseline(c) in med:
            off = med[baseline(c)]
            overhead[f"{c[0]}/{c[1]}"] = med[c] / off
            print(f"| {c[0]} | {c[1]} | {off:.1f} | {med[c]:.1f} | {med[c] / off:.2f} |")
    if args.profile:
        profile(args.profile_steps, args.profile_rows)
    if args.json:
        meta = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
                "keras": keras.__version__, "threads": args.threads, "batch": BATCH, "steps": args.steps,
                "warmup": args.warmup, "rounds": args.rounds}
        rows = [{"path": c[0], "variant": c[1], "bn": c[2], "ms_per_step": times[c], "median_ms_per_step": med[c]}
                for c in configs]
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows, "bn_overhead": overhead}, f, indent=2)


if __name__ == "__main__":
    main()
