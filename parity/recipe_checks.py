"""Check 6, recipe parity: the Keras twin is *trained* like the Lightning model, not only built like it.

Checks 1-4 copy weights and train both frameworks with plain SGD, so they cannot see the recipe around a model.
Check 6 takes the recipe that trains the pair (``ModelPair.trained_by``), builds each framework's side the way
its own trainer builds it -- LightningCLI for Lightning (``lightning_impl.train`` / ``train_denoiser``, no logger,
nothing written), ``keras_ref.train.build`` / ``keras_ref.train_denoiser.build`` for Keras -- and compares:

a. initialisation: per parameter, over INIT_SEEDS fresh seeds, the standard deviation and max |w| of Keras'
   initial weights against torch's, ratio within 1 ± a bound (INIT_TOL, or four sampling standard errors of
   the ratio where the tensor is small);
b. optimiser: both reduced to one canonical description (class, peak learning rate, betas, ε and where it is
   added, weight decay and its kind, momentum, Nesterov, momentum convention, the normalisation layers' learning-rate
   multiplier and how many parameters it applies to), compared for equality;
c. learning rate at every step of the run: the same number of steps, |Δlr| <= LR_TOL × peak;
d. recipe steps: copied weights, float64, real batches, each framework's *own* optimiser and schedule for STEPS
   steps from step 0: weights within check 4's bound (parity.checks.TRAIN_TOL) of the update;
e. data: the training, validation and test images and labels each trainer reads, the normalisation statistics,
   and the order of the training images in each of the first ORDER_EPOCHS epochs (batch by batch) identical;
f. precision: the Lightning Trainer's resolved precision and the Keras twin's dtype policy compute and store in
   the same dtypes;
g. augmentation: both augmentations applied to AUG_SAMPLES copies of a probe image (a bar through the centre,
   whose centre of mass gives the shift and whose principal axis the rotation; for integer crops, a ramp whose
   centre pixel gives the shift and flip); the drawn parameters' distributions compared, a two-sample
   Kolmogorov-Smirnov test for continuous ones and a chi-square test of the counts for discrete ones, each at
   p > AUG_P;
h. data-set stem (a net set from training images before its first step, WhitenedCNN): the stem each trainer sets
   from the images it reads, compared weight for weight.

A recipe the Keras translator refuses (keras_ref.recipes.RecipeError) is reported as not run, with the reason.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import lru_cache

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras
import numpy as np
import torch
from torch import nn

from keras_ref import recipes as keras_recipes
from keras_ref import torch_like
from core import configs
from lightning_impl.card import build_net, net_config
from lightning_impl.tasks.schedules import optimizer_and_schedule
from parity import checks
from parity.checks import Row
from parity.registry import ModelPair
from parity.transfer import keras_to_torch, layer_pairs, torch_to_keras

# --- the check's settings, in one place -----------------------------------------------------------------------
INIT_SEEDS = 5
INIT_TOL = 0.05  # ratio Keras/torch of the std and of max |w| of each initial parameter
LR_TOL = 1e-6  # × the peak learning rate, at every step
STEPS = 20  # recipe steps compared (d)
ORDER_EPOCHS = 3  # epochs whose order of the training images is compared (e)
AUG_SAMPLES = 4000  # augmented copies per framework (g)
STEM_TOL = 1e-6  # × the largest stem weight: both computed in float64 by core.whitening, stored in float32
AUG_P = 1e-3  # a distribution test below this p-value fails (g): 1 in 1000 false alarms per test
# Where a parameter has few values the std of a sample is itself noisy: the bound on the std ratio is the larger
# of INIT_TOL and SE_FACTOR sampling standard errors of a ratio of two such stds (for a uniform distribution the
# relative standard error of a sample std over n values is sqrt(0.2 / n); of a ratio of two, sqrt(0.4 / n)).
SE_FACTOR = 4.0


@dataclass
class Sides:
    """One recipe in both frameworks, as their trainers build it."""

    recipe: str
    task: str
    cli: object  # the LightningCLI (run=False): model, datamodule, trainer
    keras_recipe: dict
    input_shape: tuple[int, int, int]  # C, H, W
    num_classes: int | None
    torch_steps: int  # per epoch (the training loader's length)
    keras_steps: int
    epochs: int

    @property
    def torch_total(self) -> int:
        return self.cli.trainer.max_epochs * self.torch_steps

    @property
    def keras_total(self) -> int:
        return self.epochs * self.keras_steps

    def torch_net(self, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return build_net(net_config(self.cli) or {"class_path": type(self.cli.model.net).__module__ + "."
                                                  + type(self.cli.model.net).__name__, "init_args": {}})

    def keras_net(self, seed: int, total: int | None = None) -> keras.Model:
        """The twin as the Keras trainer builds it (seeded, torch's initialisation), compiled with its optimizer."""
        recipe = {**self.keras_recipe, "seed": seed}
        keras.utils.set_random_seed(seed)
        c, h, w = self.input_shape
        if self.task == "classification":
            from keras_ref.train import build

            net, model = build(recipe, (h, w, c), self.num_classes, self.keras_steps)
            return model
        from keras_ref.train_denoiser import build

        return build(recipe, (h, w, c), self.keras_steps)

    def torch_optimizer(self, net: nn.Module):
        hp = self.cli.model.hparams
        return optimizer_and_schedule(net, self.cli.model.optimizer, hp.schedule, hp.get("warmup_fraction", 0.1),
                                      self.torch_total, hp.get("norm_lr_scale", 1.0))


@lru_cache(maxsize=8)
def sides(recipe: str, task: str) -> Sides:
    """Both sides of a recipe (configs/<recipe>); raises keras_ref.recipes.RecipeError when Keras refuses it."""
    path = str(configs.folder() / recipe)
    if task == "classification":
        keras_recipe = keras_recipes.classifier_recipe(path)
        from lightning_impl.train import classifier_cli

        cli = classifier_cli(["--config", path, "--trainer.logger", "false"])
    else:
        keras_recipe = keras_recipes.denoiser_recipe(path)
        from lightning_impl.cli import make_cli
        from lightning_impl.data.noise import NoisyDataModule
        from lightning_impl.tasks.denoiser import Denoiser
        from lightning_impl.train_denoiser import DenoiserCLI

        cli = make_cli(DenoiserCLI, Denoiser, NoisyDataModule, ["--config", path, "--trainer.logger", "false"])
    dm = cli.datamodule
    dm.prepare_data()
    dm.setup("fit")
    torch_steps = len(dm.train_dataloader())
    if task == "classification":
        n_train, batch = len(dm.train_set), keras_recipe["batch_size"]
        shape, classes = tuple(dm.input_shape), dm.num_classes
    else:
        n_train, batch = len(dm.train_set.clean), dm.hparams.batch_size
        shape, classes = tuple(dm.train_set.clean.shape[1:]), None
    return Sides(recipe, task, cli, keras_recipe, shape, classes, torch_steps, -(-n_train // batch),
                 keras_recipe["epochs"])


# --- a. initialisation ------------------------------------------------------------------------------------------------


def _init_values(s: Sides) -> dict[str, tuple[list[np.ndarray], list[np.ndarray]]]:
    """name -> (torch values per seed, Keras values per seed), for every weight and bias torch initialises."""
    out: dict[str, tuple[list, list]] = {}
    for seed in range(INIT_SEEDS):
        t_net, k_model = s.torch_net(seed), s.keras_net(seed)
        k_net = _bare(k_model)
        for p in layer_pairs(t_net.eval(), k_net, s.input_shape):
            t, k = p.torch_layer, p.keras_layer
            if not isinstance(t, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)):
                continue
            pairs = [("weight", t.weight, k.kernel)]
            if t.bias is not None:
                pairs.append(("bias", t.bias, k.bias if getattr(k, "use_bias", False) else None))
            for kind, tw, kw in pairs:
                entry = out.setdefault(f"{p.name}.{kind}", ([], []))
                entry[0].append(tw.detach().numpy().ravel())
                entry[1].append(np.zeros(tw.numel()) if kw is None else keras.ops.convert_to_numpy(kw).ravel())
    return out


def _bare(model: keras.Model) -> keras.Model:
    """The net inside a training model (keras_ref.train puts augmentation layers in front of it)."""
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return inner[-1] if inner and not any(isinstance(layer, keras.layers.Conv2D) for layer in model.layers) else model


def _ratio(a: float, b: float) -> float:
    return a / b if b else (1.0 if a == 0 else math.inf)


def check_init(s: Sides) -> list[Row]:
    worst_std = worst_max = (0.0, "", INIT_TOL)
    for name, (t_vals, k_vals) in _init_values(s).items():
        t, k = np.concatenate(t_vals), np.concatenate(k_vals)
        bound = max(INIT_TOL, SE_FACTOR * math.sqrt(0.4 / t.size))
        dev_std = abs(_ratio(float(k.std()), float(t.std())) - 1.0)
        dev_max = abs(_ratio(float(np.abs(k).max()), float(np.abs(t).max())) - 1.0)
        if dev_std / bound >= worst_std[0] / worst_std[2]:
            worst_std = (dev_std, name, bound)
        if dev_max / INIT_TOL >= worst_max[0] / worst_max[2]:
            worst_max = (dev_max, name, INIT_TOL)
    return [
        Row(f"6a recipe init: std Keras/torch, every weight and bias ({INIT_SEEDS} seeds)",
            f"worst |ratio - 1| {worst_std[0]:.3f} ({worst_std[1]})", f"<= {worst_std[2]:.3f}",
            worst_std[0] <= worst_std[2], worst_std[0]),
        Row("6a recipe init: max |w| Keras/torch", f"worst |ratio - 1| {worst_max[0]:.3f} ({worst_max[1]})",
            f"<= {INIT_TOL:g}", worst_max[0] <= INIT_TOL, worst_max[0]),
    ]


# --- b. optimiser -------------------------------------------------------------------------------------------------------


def describe_torch(optimizer: torch.optim.Optimizer) -> dict:
    """torch's optimizer in the terms of keras_ref.torch_like.describe (torch's documented update rules)."""
    name, d = type(optimizer).__name__, optimizer.defaults
    out = {"class": name}
    if name in ("Adam", "AdamW"):
        out |= {"betas": tuple(float(b) for b in d["betas"]), "eps": float(d["eps"]), "eps_added_to": "sqrt(v_hat)"}
    elif name == "SGD":
        out |= {"momentum": float(d["momentum"]), "nesterov": bool(d["nesterov"]),
                "momentum_convention": "v = mu v + g; p -= lr v"}
    norms = [g for g in optimizer.param_groups if "norm_lr_scale" in g]  # lightning_impl.tasks.schedules' second group
    out["norm_lr_scale"] = (float(norms[0]["norm_lr_scale"]), len(norms[0]["params"])) if norms else (1.0, 0)
    wd = float(d.get("weight_decay", 0.0))
    out["weight_decay"] = (wd, "decoupled" if name == "AdamW" else "coupled (L2 in the gradient)") if wd else (0.0, "none")
    return out


def _keras_peak(optimizer: keras.optimizers.Optimizer) -> float:
    lr = optimizer._learning_rate
    if isinstance(lr, keras.optimizers.schedules.CosineDecay):
        return float(lr.warmup_target if lr.warmup_target is not None else lr.initial_learning_rate)
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


def check_optimizer(s: Sides) -> list[Row]:
    t_opt, _ = s.torch_optimizer(s.torch_net(0))
    k_opt = s.keras_net(0).optimizer
    torch_d = describe_torch(t_opt) | {"lr": float(t_opt.defaults["lr"])}
    keras_d = torch_like.describe(k_opt) | {"lr": _keras_peak(k_opt)}
    differ = sorted(k for k in set(torch_d) | set(keras_d) if not _same(torch_d.get(k), keras_d.get(k)))
    value = ("identical: " + ", ".join(f"{k} {torch_d[k]}" for k in sorted(torch_d)) if not differ else
             "; ".join(f"{k}: torch {torch_d.get(k)} / Keras {keras_d.get(k)}" for k in differ))
    return [Row("6b recipe optimizer: canonical description", value, "equal", not differ)]


def _same(a, b) -> bool:
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-7, abs_tol=0.0)
    return a == b


# --- c. learning rate at every step -------------------------------------------------------------------------------------


def torch_lrs(s: Sides) -> np.ndarray:
    optimizer, schedule = s.torch_optimizer(s.torch_net(0))
    lrs = []
    with warnings.catch_warnings():  # stepping the schedule without optimizer steps: on purpose
        warnings.simplefilter("ignore")
        for _ in range(s.torch_total):
            lrs.append(optimizer.param_groups[0]["lr"])
            if schedule is not None:
                schedule.step()
    return np.asarray(lrs)


def keras_lrs(s: Sides) -> np.ndarray:
    lr = s.keras_net(0).optimizer._learning_rate
    steps = np.arange(s.keras_total)
    if not callable(lr):
        return np.full(len(steps), float(keras.ops.convert_to_numpy(lr)))
    try:  # one call over every step where the backend maps the schedule (JAX: one eager call per step took ~50 ms)
        return np.asarray(keras.ops.convert_to_numpy(keras.ops.vectorized_map(lr, keras.ops.arange(len(steps)))))
    except Exception:  # noqa: BLE001  torch's vmap refuses the schedule's data-dependent branch: step by step
        return np.asarray([float(keras.ops.convert_to_numpy(lr(int(k)))) for k in steps])


def check_schedule(s: Sides) -> list[Row]:
    t, k = torch_lrs(s), keras_lrs(s)
    peak = float(max(t.max(initial=0.0), k.max(initial=0.0))) or 1.0
    same_count = len(t) == len(k)
    worst = float(np.abs(t - k).max()) / peak if same_count and len(t) else math.inf
    return [
        Row("6c recipe schedule: steps in the run", f"torch {len(t)} / Keras {len(k)}", "equal", same_count),
        Row("6c recipe schedule: learning rate at every step", f"max |Δlr| {worst:.1e} × peak {peak:g}",
            f"<= {LR_TOL:g} × peak", worst <= LR_TOL, worst),
    ]


# --- d. recipe steps -------------------------------------------------------------------------------------------------------


def warmup_end(s: Sides) -> int:
    """The first step after the warm-up (where the learning rate peaks), as both schedules count it."""
    kr = s.keras_recipe
    return int(s.torch_total * kr["warmup_fraction"]) if kr["schedule"] != "constant" else 0


def _start_at(step: int, torch_model: nn.Module, optimizer, schedule, keras_model) -> None:
    """Both optimisers as at ``step`` of the run: the schedules advanced, the step counts that Adam's bias
    correction reads set (the moments start at zero in both). No weight moves."""
    if step == 0:
        return
    with warnings.catch_warnings():  # the scheduler is stepped before the optimiser on purpose
        warnings.simplefilter("ignore")
        for _ in range(step):
            if schedule is not None:
                schedule.step()
    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        for p in torch_model.parameters():
            optimizer.state[p] = {"step": torch.tensor(float(step), dtype=torch.float32),
                                  "exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
    keras_model.optimizer.build(keras_model.trainable_variables)
    keras_model.optimizer.iterations.assign(step)


def check_steps(pair: ModelPair, s: Sides) -> list[Row]:
    """6d from step 0 (the warm-up's start), and again from the end of the warm-up (the peak learning rate,
    the cosine's start), where a schedule or an update rule that agreed early could part."""
    rows = _steps_from(pair, s, 0)
    if warmup_end(s) > 0:
        rows += _steps_from(pair, s, warmup_end(s))
    return rows


def _steps_from(pair: ModelPair, s: Sides, first: int) -> list[Row]:
    with checks.keras_float64():
        torch_model, keras_model = checks.build(pair, checks.TRAIN_DTYPE)
        checks.perturb_torch(torch_model)
        torch_to_keras(torch_model, keras_model, pair.input_shape)
        start = {k: v.clone() for k, v in torch_model.named_parameters()}
        x, y = checks.real_batch(pair, "train", pair.step_batch * STEPS)
        x, y = x.to(checks.TRAIN_DTYPE), (y.to(checks.TRAIN_DTYPE) if y.is_floating_point() else y)
        batches = list(zip(x.split(pair.step_batch), y.split(pair.step_batch)))
        torch_model.train()
        keras.utils.set_random_seed(checks.SEED)
        optimizer, schedule = s.torch_optimizer(torch_model)
        loss_fn = checks.TORCH_LOSSES[pair.loss]()
        kr = s.keras_recipe
        k_opt = keras_recipes.make_optimizer(kr["optimizer"], s.keras_total, kr["schedule"], kr["warmup_fraction"],
                                             kr.get("norm_lr_scale", 1.0), keras_model)
        keras_model.compile(optimizer=k_opt, loss=checks.KERAS_LOSSES[pair.loss]())
        _start_at(first, torch_model, optimizer, schedule, keras_model)
        with checks.dropout_off(torch_model, keras_model):
            for xb, yb in batches:
                optimizer.zero_grad()
                loss_fn(torch_model(xb), yb).backward()
                optimizer.step()
                if schedule is not None:
                    schedule.step()
                keras_model.train_on_batch(checks.nhwc(xb), checks.nhwc(yb) if pair.task == "denoising" else yb.numpy())
        trained = {k: v.detach().clone() for k, v in torch_model.named_parameters()}
        keras_to_torch(keras_model, torch_model, pair.input_shape)
        ported = dict(torch_model.named_parameters())
    delta = checks._max_abs([trained[n] - ported[n].detach() for n in trained])
    update = checks._max_abs([trained[n] - start[n].detach() for n in trained])
    rel = checks._relative_to_update(delta, update)
    opt = type(optimizer).__name__
    return [Row(f"6d recipe steps: weights after {STEPS} steps of each framework's own {opt} and schedule "
                f"(from step {first}{' (end of warm-up)' if first else ''}, batch {pair.step_batch}, float64)", f"max abs diff {delta:.2e} = {rel:.1e} x max update {update:.2e}",
                f"<= {checks.TRAIN_TOL:g} x max update", rel <= checks.TRAIN_TOL, rel)]


# --- e. data ------------------------------------------------------------------------------------------------------------


def _seed(s: Sides) -> int:
    return int(s.cli.config["seed_everything"])


def torch_order(s: Sides, epoch: int) -> list[np.ndarray]:
    """The batches of training indices Lightning's loader gives in ``epoch``: the loader is built as at fit time,
    when the run's seed_everything seed is torch's initial seed."""
    torch.manual_seed(_seed(s))
    loader = s.cli.datamodule.train_dataloader()
    loader.batch_sampler.set_epoch(epoch)
    return [np.asarray(b) for b in loader.batch_sampler]


def keras_order(s: Sides, epoch: int) -> list[np.ndarray]:
    """The batches of training indices the Keras trainer's feeder gives in ``epoch``."""
    from keras_ref.epochs import EpochBatches
    from keras_ref.train_denoiser import FreshNoise

    kr = s.keras_recipe
    if s.task == "classification":
        n = len(s.cli.datamodule.train_set)
        feeder = EpochBatches(np.zeros((n, 1)), np.zeros(n), kr["batch_size"], kr["seed"])
    else:
        data = s.cli.datamodule
        feeder = FreshNoise(data.train_set.clean, data.sigma, data.hparams.batch_size, kr["seed"])
    feeder.set_epoch(epoch)
    order, batch = np.asarray(feeder.order), feeder.batch_size
    return [order[i : i + batch] for i in range(0, len(order), batch)]


def _keras_data(s: Sides):
    """The data module the Keras trainer builds from its own recipe (keras_ref.train / train_denoiser)."""
    kr = s.keras_recipe
    if s.task == "classification":
        from lightning_impl.data.datamodules import DATAMODULES

        dm = DATAMODULES[kr["dataset"]](val_fraction=kr["val_fraction"], split_seed=kr["split_seed"], download=False)
    else:
        from lightning_impl.data.noise import NoisyDataModule

        dm = NoisyDataModule(**{**kr["data"], "download": False})
    dm.prepare_data()
    dm.setup()
    return dm


def _tensors(dm, task: str) -> dict[str, torch.Tensor]:
    if task == "classification":
        out = {f"{split} {part}": getattr(getattr(dm, f"{split}_set"), part)
               for split in ("train", "val", "test") for part in ("images", "labels")}
        return {**out, "mean": dm.mean, "std": dm.std}
    out = {"train clean": dm.train_set.clean}
    for split in ("val", "test"):
        out.update({f"{split} clean": getattr(dm, f"{split}_set").clean, f"{split} noisy": getattr(dm, f"{split}_set").noisy})
    return out


def check_data(s: Sides) -> list[Row]:
    lightning = s.cli.datamodule
    if lightning.train_set is None or (s.task == "classification" and lightning.test_set is None):
        lightning.setup()
    mine, theirs = _tensors(lightning, s.task), _tensors(_keras_data(s), s.task)
    differ = [k for k in mine if mine[k].shape != theirs[k].shape or not torch.equal(mine[k], theirs[k])]
    rows = [Row("6e recipe data: images, labels, split and normalisation each trainer reads",
                f"{len(mine) - len(differ)}/{len(mine)} identical" + (f" (differ: {', '.join(differ)})" if differ else ""),
                "all identical", not differ)]
    same, sizes = 0, None
    for epoch in range(ORDER_EPOCHS):
        t, k = torch_order(s, epoch), keras_order(s, epoch)
        sizes = sizes or (len(t), len(t[0]) if t else 0)
        same += len(t) == len(k) and all(np.array_equal(a, b) for a, b in zip(t, k))
    rows.append(Row(f"6e recipe data: order of the training images, epochs 0-{ORDER_EPOCHS - 1}",
                    f"{same}/{ORDER_EPOCHS} epochs batch for batch identical ({sizes[0]} batches of {sizes[1]})",
                    "all identical", same == ORDER_EPOCHS))
    return rows


# --- f. precision ----------------------------------------------------------------------------------------------------------

TORCH_DTYPES = {"32-true": ("float32", "float32"), "32": ("float32", "float32"), "bf16-mixed": ("bfloat16", "float32"),
                "16-mixed": ("float16", "float32"), "64-true": ("float64", "float64"), "bf16-true": ("bfloat16", "bfloat16")}


def keras_dtypes(model: keras.Model) -> set[tuple[str, str]]:
    """(compute dtype, variable dtype) of every layer of a Keras model that holds weights."""
    return {(layer.dtype_policy.compute_dtype, layer.dtype_policy.variable_dtype)
            for layer in model._flatten_layers(include_self=False, recursive=True) if layer.weights}


def check_precision(s: Sides) -> list[Row]:
    precision = str(s.cli.trainer.precision)
    wanted = TORCH_DTYPES.get(precision)
    found = keras_dtypes(s.keras_net(0))
    shown = ", ".join(f"{c}/{v}" for c, v in sorted(found))
    return [Row("6f recipe precision: compute/variable dtypes", f"Lightning {precision} "
                f"({'/'.join(wanted) if wanted else '?'}) / Keras {shown}", "the same", found == {wanted})]


# --- g. augmentation --------------------------------------------------------------------------------------------------


def _bar(h: int, w: int, c: int) -> np.ndarray:
    """A horizontal bar of width 2 through the centre, half the image long: NCHW, one image."""
    x = np.zeros((1, c, h, w), dtype=np.float32)
    x[:, :, h // 2 - 1 : h // 2 + 1, w // 4 : w - w // 4] = 1.0
    return x


def bar_parameters(images: np.ndarray) -> dict[str, np.ndarray]:
    """Shift (centre of mass) and rotation (principal axis, degrees) of augmented bars, NCHW."""
    mass = np.clip(images.mean(axis=1), 0.0, None)  # N, H, W
    n, h, w = mass.shape
    ys, xs = np.mgrid[0:h, 0:w]
    total = mass.sum(axis=(1, 2))
    cy, cx = (mass * ys).sum(axis=(1, 2)) / total, (mass * xs).sum(axis=(1, 2)) / total
    dy, dx = ys - cy[:, None, None], xs - cx[:, None, None]
    cyy, cxx, cxy = ((mass * dy * dy).sum((1, 2)), (mass * dx * dx).sum((1, 2)), (mass * dx * dy).sum((1, 2)))
    angle = np.degrees(0.5 * np.arctan2(2 * cxy, cxx - cyy))
    return {"shift x": cx - (w - 1) / 2, "shift y": cy - (h - 1) / 2, "|rotation|": np.abs(angle)}


def _ramp(h: int, w: int, c: int) -> np.ndarray:
    """Every pixel a different positive value (1 + its flat index): NCHW, one image."""
    return np.broadcast_to(1.0 + np.arange(h * w, dtype=np.float32).reshape(1, 1, h, w), (1, c, h, w)).copy()


def crop_parameters(images: np.ndarray) -> dict[str, np.ndarray]:
    """Integer shift of each augmented ramp (from its centre pixel) and whether it was mirrored, NCHW."""
    n, _, h, w = images.shape
    centre = images[:, 0, h // 2, w // 2]
    right = images[:, 0, h // 2, w // 2 + 1]
    src = np.rint(centre).astype(int) - 1
    mirrored = np.rint(right).astype(int) - 1 == src - 1
    # Mirrored, the centre pixel comes from column w - 1 - w // 2 of the shifted image.
    row, col = src // w - h // 2, src % w - np.where(mirrored, w - 1 - w // 2, w // 2)
    return {"shift rows": row, "shift columns": col, "mirrored": mirrored.astype(int)}


def augmented(s: Sides, probe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUG_SAMPLES copies of ``probe`` through each framework's training augmentation (NCHW numpy)."""
    from keras_ref.augment import AUGMENTATIONS

    batch = np.repeat(probe, AUG_SAMPLES, axis=0)
    torch.manual_seed(checks.SEED)
    aug = s.cli.datamodule.augment
    if isinstance(aug, nn.Module):
        aug.train()
    with torch.no_grad():
        t = aug(torch.from_numpy(batch)).numpy()
    keras.utils.set_random_seed(checks.SEED)
    spec = s.keras_recipe["augment"]
    k = keras.ops.convert_to_numpy(AUGMENTATIONS[spec["name"]](**spec["init_args"])(checks.nhwc(torch.from_numpy(batch)), training=True))
    return t, np.transpose(k, (0, 3, 1, 2))


def check_augmentation(s: Sides) -> list[Row]:
    from scipy import stats

    spec = s.keras_recipe.get("augment") if s.task == "classification" else None
    if not spec:
        return []
    c, h, w = s.input_shape
    crop = spec["name"] in ("CropFlipAugment", "crop_flip_augment")
    t, k = augmented(s, _ramp(h, w, c) if crop else _bar(h, w, c))
    measure = crop_parameters if crop else bar_parameters
    mine, theirs = measure(t), measure(k)
    rows = []
    for name in mine:
        a, b = mine[name], theirs[name]
        if crop:
            values = np.union1d(a, b)
            table = np.array([[np.sum(x == v) for v in values] for x in (a, b)])
            p = float(stats.chi2_contingency(table)[1]) if len(values) > 1 else 1.0
            how = f"chi-square over {len(values)} values"
        else:
            p, how = float(stats.ks_2samp(a, b).pvalue), "Kolmogorov-Smirnov"
        rows.append(Row(f"6g recipe augmentation ({spec['name']}): distribution of the {name}",
                        f"p {p:.2g} ({how}, {AUG_SAMPLES} draws each; mean torch {a.mean():.3f} / Keras {b.mean():.3f})",
                        f"p > {AUG_P:g}", p > AUG_P, p))
    return rows


# --- h. data-set stem --------------------------------------------------------------------------------------------------------


def check_stem(s: Sides) -> list[Row]:
    """The whitening stem each trainer sets (lightning_impl ImageClassifier.on_fit_start, keras_ref.train.train) from
    its own copy of the training split; no row for a net without one."""
    torch_net = s.torch_net(0)
    if s.task != "classification" or not hasattr(torch_net, "init_whitening"):
        return []
    from core.split import DatasetSplit
    from keras_ref.models.whitened_cnn import init_whitening
    from keras_ref.train import stem_images as keras_stem_images
    from lightning_impl.tasks.classifier import stem_images as torch_stem_images

    lightning = s.cli.datamodule
    if lightning.train_set is None:
        lightning.setup()
    torch_net.init_whitening(torch_stem_images(lightning))
    kr = s.keras_recipe
    split = DatasetSplit(kr["dataset"], val_fraction=kr["val_fraction"], split_seed=kr["split_seed"], download=False)
    split.prepare()
    split.setup()
    keras_net = _bare(s.keras_net(0))
    init_whitening(keras_net, keras_stem_images(split.arrays("train")[0]))
    t = torch_net.whiten.weight.detach().double().numpy()
    k = np.asarray(keras.ops.convert_to_numpy(keras_net.get_layer("whiten").kernel), dtype=np.float64).transpose(3, 2, 0, 1)
    scale = float(np.abs(t).max())
    worst = float(np.abs(t - k).max()) / scale
    return [Row(f"6h recipe data-set stem: the whitening filters each trainer sets from its training images "
                f"({len(t)} filters)", f"max |Δ| {worst:.1e} × max |w| {scale:.3g}", f"<= {STEM_TOL:g} × max |w|",
                worst <= STEM_TOL, worst)]


def check_recipe(pair: ModelPair) -> list[Row]:
    recipe = pair.trained_by
    if recipe is None:
        return [Row("6 recipe", "no recipe declared for this pair (ModelPair.trained_by)", "-", None)]
    try:
        s = sides(recipe, pair.task)
    except keras_recipes.RecipeError as err:
        return [Row(f"6 recipe ({recipe})", f"not run: Keras does not translate the recipe ({err})", "-", None)]
    return [*check_init(s), *check_optimizer(s), *check_schedule(s), *check_steps(pair, s), *check_data(s),
            *check_precision(s), *check_augmentation(s), *check_stem(s)]


__all__ = ["check_recipe", "describe_torch", "sides"]
