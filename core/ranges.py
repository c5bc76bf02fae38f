"""The range of every number a LightningCLI run takes, checked before any class is built (ProjectCLI calls
check_ranges before Lightning seeds): Lightning takes many of these as they come (a min_epochs of -1, a
log_every_n_steps of 0, a huge device count that dies deep in the Trainer), or divides by them at the first step
(check_val_every_n_epoch 0). A refusal names the option, the value and what is accepted."""

from __future__ import annotations

import math
import re


class RangeError(ValueError):
    """A number of a run out of its range; the message names the option."""


MAX_INT = 2**31 - 1  # no count or size of the project is larger (flags and keras_ref.recipes read it too)
MAX_SEED = 2**32 - 1  # numpy's largest seed (seed_everything, split seeds)
MAX_FLOAT = 1e6  # no rate, scale or clipping value of the project is anywhere near

# Numeric options by their dotted key: (lowest accepted, values below it that mean something, what is accepted).
RANGES: dict[str, tuple[float, tuple, str]] = {
    "trainer.max_epochs": (1, (-1,), "1 or more epochs, or -1 (no limit)"),
    "trainer.min_epochs": (0, (), "0 or more epochs"),
    "trainer.max_steps": (1, (-1,), "1 or more steps, or -1 (no limit)"),
    "trainer.min_steps": (0, (), "0 or more steps"),
    "trainer.limit_train_batches": (1, (), "1 or more batches, or a share in (0, 1]"),
    "trainer.limit_val_batches": (1, (), "1 or more batches, or a share in (0, 1] (the best epoch is chosen on validation)"),
    "trainer.limit_test_batches": (1, (), "1 or more batches, or a share in (0, 1] (the record is the test)"),
    "trainer.limit_predict_batches": (0, (), "0 or more batches, or a share in [0, 1]"),
    "trainer.overfit_batches": (0, (), "0 (off) or more batches, or a share in [0, 1]"),
    "trainer.val_check_interval": (1, (), "1 or more batches, or a share of an epoch in (0, 1]"),
    "trainer.check_val_every_n_epoch": (1, (), "1 or more epochs"),
    "trainer.num_sanity_val_steps": (0, (-1,), "0 or more batches, or -1 (all)"),
    "trainer.log_every_n_steps": (1, (), "1 or more steps"),
    "trainer.accumulate_grad_batches": (1, (), "1 or more batches"),
    "trainer.gradient_clip_val": (0, (), "0 (off) or more"),
    "trainer.reload_dataloaders_every_n_epochs": (0, (), "0 (never) or more epochs"),
    "trainer.num_nodes": (1, (), "1 or more machines"),
    "trainer.devices": (1, (-1,), "1 or more devices, -1 (all) or auto"),
    "trainer.fast_dev_run": (0, (), "0 (off) or more batches"),
    "model.norm_lr_scale": (1e-12, (), "a factor above 0"),
    "model.shift_tta": (0, (), "0 (off) or more pixels"),
    "model.lookahead": (0, (), "0 (off) or more steps"),
    "model.stem_bias_epochs": (0, (), "0 or more epochs (null: trains throughout)"),
    "model.optimizer.init_args.lr": (1e-12, (), "a learning rate above 0 (0 would train nothing)"),
    "model.optimizer.init_args.weight_decay": (0, (), "0 or more"),
    "checkpoint.save_top_k": (1, (-1,), "1 or more checkpoints, or -1 (all): the best one is tested"),
    "checkpoint.every_n_train_steps": (0, (), "0 (off) or more steps"),
    "checkpoint.every_n_epochs": (1, (), "1 or more epochs"),
    "figures.misclassified": (0, (), "0 (no figure) or more images"),
    "figures.denoised": (0, (), "0 (no figure) or more images"),
    "seed_everything": (0, (), "a seed in [0, 4294967295]"),
    "data.init_args.split_seed": (0, (), "a seed in [0, 4294967295]"),
    "data.split_seed": (0, (), "a seed in [0, 4294967295]"),
}
FRACTIONS = {"trainer.limit_train_batches", "trainer.limit_val_batches", "trainer.limit_test_batches",
             "trainer.limit_predict_batches", "trainer.overfit_batches", "trainer.val_check_interval"}
SEEDS = {"seed_everything", "data.init_args.split_seed", "data.split_seed"}


def _leaves(value, key: str = ""):
    """(dotted key, value) of every number in a parsed configuration."""
    if hasattr(value, "items"):
        for k, v in value.items():
            yield from _leaves(v, f"{key}.{k}" if key else k)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{key}[{i}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield key, value


def check_ranges(config) -> None:
    """Every number of a parsed run configuration finite and in its range (RANGES), before any class is built:
    a refusal names the option, the value and what is accepted."""
    config = config.as_dict() if hasattr(config, "as_dict") else dict(config)
    devices = (config.get("trainer") or {}).get("devices")
    if isinstance(devices, str) and devices.lstrip("-").isdigit():  # "--trainer.devices 2" arrives as text
        config["trainer"] = {**config["trainer"], "devices": int(devices)}
    max_time = (config.get("trainer") or {}).get("max_time")
    if isinstance(max_time, str) and not re.fullmatch(r"\d+:\d\d:\d\d:\d\d", max_time):
        raise RangeError(f"--trainer.max_time {max_time}: out of range; accepted: a duration DD:HH:MM:SS "
                                 "(e.g. 00:01:30:00), or null (no limit)")
    for key, value in _leaves(config):
        flag = f"--{key}"
        largest = (MAX_SEED if key in SEEDS else MAX_INT) if isinstance(value, int) else MAX_FLOAT
        if isinstance(value, float) and not math.isfinite(value) or abs(value) > largest:
            shown = largest if isinstance(largest, int) else f"{largest:g}"
            raise RangeError(f"{flag} {value}: out of range (no number of a run is above {shown})")
        if key not in RANGES:
            continue
        low, special, what = RANGES[key]
        if value in special:
            continue
        if key in FRACTIONS and isinstance(value, float) and value.is_integer() and value > 1:
            value = int(value)  # "--trainer.limit_train_batches 200" can arrive as 200.0: a count, as Lightning takes it
        if key in FRACTIONS and isinstance(value, float):
            ok = (0.0 if low == 0 else 1e-12) <= value <= 1.0
        else:  # the upper bounds (MAX_INT, MAX_SEED) were checked above
            ok = value >= low
        if not ok:
            raise RangeError(f"{flag} {value}: out of range; accepted: {what}")
