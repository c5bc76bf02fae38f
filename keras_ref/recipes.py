"""A LightningCLI recipe (configs/*.yaml) read as the Keras trainers' recipe: one file trains both frameworks.

The YAML is merged over the task's default recipe, as LightningCLI merges it over its default config file, so
both frameworks fill in the same defaults from the same place. Every key is translated one to one or refused
by name: a recipe Keras cannot follow exactly is an error, never a silently different run. ``trainer.precision``
is resolved once, as Lightning resolves it (core.precision: ``null`` is bf16 where the hardware computes
it natively), and becomes the Keras dtype policy (``bf16-mixed`` -> ``mixed_bfloat16``). Not translated on
purpose (they change speed or placement, not the model): ``trainer.accelerator``/``devices``/``strategy``/
``num_nodes``, ``model.channels_last``, progress and summary switches. Checkpoints are chosen on validation by the Keras trainer itself (``checkpoint`` is accepted as is).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras

from keras_ref.augment import AUGMENTATIONS
from keras_ref.models import TWINS
from keras_ref.torch_like import TorchAdam, TorchAdamW, TorchSGD, norm_variables
from core import configs, precision
from core.datasets import SPECS
from core.ranges import MAX_FLOAT, MAX_INT, MAX_SEED  # the same bounds as the Lightning side's

# Lightning's precision -> the Keras dtype policy that computes and stores as it does.
KERAS_POLICY = {"32-true": "float32", "32": "float32", 32: "float32", "bf16-mixed": "mixed_bfloat16",
                "16-mixed": "mixed_float16", "64-true": "float64", "64": "float64", 64: "float64"}

CLASSIFIER_DEFAULT = "mnist_specified_cnn.yaml"  # = python -m lightning_impl.train with no arguments
DENOISER_DEFAULT = "denoise_reference.yaml"  # = python -m lightning_impl.train_denoiser with no arguments

# Keys a recipe may hold, per section. Anything else (a typo, or a Trainer option such as
# accumulate_grad_batches or gradient_clip_val) is refused by name.
NO_EFFECT_ON_THE_MODEL = {"precision", "accelerator", "devices", "strategy", "num_nodes", "enable_progress_bar",
                          "enable_model_summary", "enable_checkpointing", "log_every_n_steps", "default_root_dir",
                          "deterministic", "benchmark", "callbacks"}
KEYS = {
    "": {"seed_everything", "trainer", "model", "data", "checkpoint", "timer", "ckpt_path"},
    "trainer": {"max_epochs", "logger"} | NO_EFFECT_ON_THE_MODEL,
    "classifier model": {"net", "optimizer", "schedule", "warmup_fraction", "label_smoothing", "num_classes",
                         "flip_tta", "shift_tta", "channels_last", "norm_lr_scale"},
    "classifier data": {"data_dir", "batch_size", "eval_batch_size", "val_fraction", "split_seed", "download", "augment"},
    "denoiser model": {"net", "loss", "optimizer", "schedule", "warmup_fraction"},
    "denoiser data": {"dataset", "sigma", "eval_sigma", "batch_size", "eval_batch_size", "val_fraction", "split_seed",
                      "train_limit", "val_limit", "test_limit", "data_dir", "download"},
}
DATASETS = {spec.datamodule: name for name, spec in SPECS.items()}  # a recipe's data.class_path -> its dataset
FROM_DATA = ("in_channels", "num_classes", "input_size")  # a twin gets these from the data's shape


class RecipeError(ValueError):
    """A recipe the Keras trainers cannot follow exactly; the message names the key."""


def _number(where: str, value, low: float, high: float, *, integer: bool = False, low_open: bool = False,
            high_open: bool = False):
    """``value`` if it is a (finite) number in the range, else a RecipeError naming the key: the same ranges the
    Lightning side's constructors enforce, so that both frameworks refuse the same recipes."""
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type or value != value:
        raise RecipeError(f"{where}: expected {'an integer' if integer else 'a number'}, got {value!r}")
    below = value <= low if low_open else value < low
    above = value >= high if high_open else value > high
    if below or above:
        show = (lambda x: str(int(x))) if integer else (lambda x: f"{x:g}")  # noqa: E731
        span = f"{'(' if low_open else '['}{show(low)}, {show(high)}{')' if high_open else ']'}"
        raise RecipeError(f"{where}: must lie in {span}, got {value!r}")
    return value


def _net_args(twin, args: dict, where: str) -> dict:
    """The net's init_args, each one a parameter of the Keras twin (a typo is named, not a TypeError)."""
    import inspect

    params = inspect.signature(twin).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return args
    accepted = set(params)
    unknown = sorted(set(args) - accepted)
    if unknown:
        raise RecipeError(f"{where}.init_args.{unknown[0]}: not an argument of the net (accepted: "
                          f"{', '.join(sorted(accepted - {'input_shape', 'num_classes'}))})")
    return args


def _check_keys(section: str, found: dict, where: str) -> None:
    unknown = sorted(set(found) - KEYS[section])
    if unknown:
        raise RecipeError(f"{where}{unknown[0]}: not a key the Keras trainer can translate (accepted: "
                          f"{', '.join(sorted(KEYS[section]))})")


def _class(spec, where: str) -> tuple[str, dict]:
    """(class name, init_args) of a ``class_path``/``init_args`` mapping or a bare import path."""
    if isinstance(spec, str):
        spec = {"class_path": spec}
    if not isinstance(spec, dict) or "class_path" not in spec:
        raise RecipeError(f"{where}: expected a class_path, got {spec!r}")
    extra = sorted(set(spec) - {"class_path", "init_args", "dict_kwargs"})
    if extra:
        raise RecipeError(f"{where}.{extra[0]}: not a key of a class (class_path, init_args)")
    return spec["class_path"].rsplit(".", 1)[-1], dict(spec.get("init_args") or {})


def _merged(config: dict | str | Path, default: str) -> dict:
    config = config if isinstance(config, dict) else configs.load(config)
    if not isinstance(config, dict):
        raise RecipeError("a recipe is a YAML mapping")
    task, wanted = configs.recipe_task(config), configs.recipe_task(configs.load(default))
    if task not in (None, wanted):
        raise RecipeError(f"this is a {task} recipe: use keras_ref.{'train_denoiser' if task == 'denoiser' else 'train'}")
    _check_keys("", config, "")
    _check_keys("trainer", config.get("trainer") or {}, "trainer.")
    return configs.merge(configs.load(default), config)


def _epochs(trainer: dict) -> int:
    epochs = trainer.get("max_epochs")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or not 1 <= epochs <= MAX_INT:
        raise RecipeError(f"trainer.max_epochs: the Keras trainer needs a number of epochs in [1, {MAX_INT}], got {epochs!r}")
    return epochs


def _policy(trainer: dict) -> str:
    """The Keras dtype policy of the recipe's precision, resolved as the Lightning trainer resolves it."""
    resolved = precision.resolve(trainer.get("precision"), trainer.get("accelerator"))
    if resolved not in KERAS_POLICY:
        raise RecipeError(f"trainer.precision: {resolved!r} has no Keras dtype policy here "
                          f"(translated: {', '.join(sorted(map(str, KERAS_POLICY)))})")
    return KERAS_POLICY[resolved]


def _seed(config: dict, default: int) -> int:
    return _number("seed_everything", config.get("seed_everything", default), 0, MAX_SEED, integer=True)


def _run_name(trainer: dict, fallback: str) -> tuple[str, str]:
    """(runs folder, run name) from the recipe's CSVLogger: the Keras run goes beside the Lightning one."""
    logger = trainer.get("logger") or {}
    args = logger.get("init_args", {}) if isinstance(logger, dict) else {}
    return args.get("save_dir", "runs"), f"{args.get('name', fallback)}_keras"


def _optimizer(model: dict) -> dict:
    optimizer = model.get("optimizer", "torch.optim.Adam")
    if isinstance(optimizer, str):  # a bare class path: torch's defaults
        optimizer = {"class_path": optimizer}
    return {"class_path": optimizer["class_path"], "init_args": dict(optimizer.get("init_args") or {})}


def classifier_recipe(config: dict | str | Path = CLASSIFIER_DEFAULT) -> dict:
    """A classifier's LightningCLI recipe -> everything keras_ref.train needs."""
    config = _merged(config, CLASSIFIER_DEFAULT)
    model, data, trainer = config.get("model") or {}, config.get("data") or {}, config.get("trainer") or {}
    _check_keys("classifier model", model, "model.")
    net_name, net_args = _class(model.get("net", "lightning_impl.models.SpecifiedCNN"), "model.net")
    if net_name not in ("SpecifiedCNN", "ImprovedCNN", "WhitenedCNN"):
        raise RecipeError(f"model.net: no Keras twin for {net_name!r} in a classifier")
    _number("model.norm_lr_scale", model.get("norm_lr_scale", 1.0), 0.0, MAX_FLOAT, low_open=True)
    _norm_scale_translates(_optimizer(model)["class_path"].rsplit(".", 1)[-1], model.get("norm_lr_scale", 1.0))
    if not isinstance(model.get("flip_tta", False), bool):
        raise RecipeError(f"model.flip_tta: expected true or false, got {model['flip_tta']!r}")
    data_name, data_args = _class(data, "data")
    if data_name not in DATASETS:
        raise RecipeError(f"data.class_path: no Keras reader for {data_name!r}; known: {sorted(DATASETS)}")
    _check_keys("classifier data", data_args, "data.init_args.")
    augment = data_args.get("augment")
    if augment is not None:
        aug_name, aug_args = _class(augment, "data.init_args.augment")
        if aug_name not in AUGMENTATIONS:
            raise RecipeError(f"data.init_args.augment: no Keras twin for {aug_name!r}; known: {sorted(AUGMENTATIONS)}")
        augment = {"name": aug_name, "init_args": aug_args}
    runs_dir, name = _run_name(trainer, "classifier")
    _number("model.label_smoothing", model.get("label_smoothing", 0.0), 0.0, 1.0)
    _number("model.shift_tta", model.get("shift_tta", 0), 0, MAX_INT, integer=True)
    _number("model.warmup_fraction", model.get("warmup_fraction", 0.1), 0.0, 1.0, high_open=True)
    _number("data.init_args.batch_size", data_args.get("batch_size", 128), 1, MAX_INT, integer=True)
    _number("data.init_args.split_seed", data_args.get("split_seed", 0), 0, MAX_SEED, integer=True)
    _number("data.init_args.val_fraction", data_args.get("val_fraction", 0.1), 0.0, 1.0, low_open=True, high_open=True)
    return {
        "task": "classification",
        "dataset": DATASETS[data_name],
        "net": net_name,
        "net_args": _net_args(TWINS[net_name], {k: v for k, v in net_args.items() if k not in FROM_DATA}, "model.net"),
        "augment": augment,
        "optimizer": _optimizer(model),
        "schedule": model.get("schedule", "warmup_cosine"),
        "warmup_fraction": model.get("warmup_fraction", 0.1),
        "label_smoothing": model.get("label_smoothing", 0.0),
        "shift_tta": model.get("shift_tta", 0),
        "flip_tta": model.get("flip_tta", False),
        "norm_lr_scale": model.get("norm_lr_scale", 1.0),
        "batch_size": data_args.get("batch_size", 128),
        "val_fraction": data_args.get("val_fraction", 0.1),
        "split_seed": data_args.get("split_seed", 0),
        "epochs": _epochs(trainer),
        "dtype_policy": _policy(trainer),
        "seed": _seed(config, 42),
        "runs_dir": runs_dir,
        "name": name,
    }


def denoiser_recipe(config: dict | str | Path = DENOISER_DEFAULT) -> dict:
    """A lightning_impl.train_denoiser recipe -> everything keras_ref.train_denoiser needs."""
    config = _merged(config, DENOISER_DEFAULT)
    model, data, trainer = config.get("model") or {}, config.get("data") or {}, config.get("trainer") or {}
    _check_keys("denoiser model", model, "model.")
    _check_keys("denoiser data", data, "data.")
    net_name, net_args = _class(model.get("net", "lightning_impl.models.DenoisingAE"), "model.net")
    if net_name not in ("DenoisingAE", "UNetDAE"):
        raise RecipeError(f"model.net: no Keras twin for {net_name!r} in a denoiser")
    runs_dir, name = _run_name(trainer, "denoise")
    _number("model.warmup_fraction", model.get("warmup_fraction", 0.05), 0.0, 1.0, high_open=True)
    for key in ("batch_size", "eval_batch_size", "train_limit", "val_limit", "test_limit"):
        if data.get(key) is not None:
            _number(f"data.{key}", data[key], 1, MAX_INT, integer=True)
    if data.get("split_seed") is not None:
        _number("data.split_seed", data["split_seed"], 0, MAX_SEED, integer=True)
    if "val_fraction" in data:
        _number("data.val_fraction", data["val_fraction"], 0.0, 1.0, low_open=True, high_open=True)
    return {
        "task": "denoising",
        "net": net_name,
        "net_args": _net_args(TWINS[net_name], {k: v for k, v in net_args.items() if k != "in_channels"}, "model.net"),
        "loss": model.get("loss", "mse"),
        "optimizer": _optimizer(model),
        "schedule": model.get("schedule", "warmup_cosine"),
        "warmup_fraction": model.get("warmup_fraction", 0.05),
        "data": dict(data),
        "epochs": _epochs(trainer),
        "dtype_policy": _policy(trainer),
        "seed": _seed(config, 0),
        "runs_dir": runs_dir,
        "name": name,
    }


def _norm_scale_translates(optimizer_name: str, norm_lr_scale: float) -> None:
    """A RecipeError where Keras cannot give the normalisation layers their own rate: with AdamW, whose decoupled
    decay reads the optimizer's learning rate (keras_ref.torch_like scales Adam's and SGD's gradient-term decay)."""
    if norm_lr_scale != 1.0 and optimizer_name == "AdamW":
        raise RecipeError("model.norm_lr_scale: not translated with AdamW (its decoupled decay reads the optimizer's "
                          "learning rate); use Adam or SGD, whose weight decay is a gradient term")


def make_optimizer(optimizer: dict, total_steps: int, schedule: str, warmup_fraction: float, norm_lr_scale: float = 1.0,
                   model: keras.Model | None = None) -> keras.optimizers.Optimizer:
    """The Keras optimizer of a recipe's ``model.optimizer`` (Adam, AdamW or SGD), with its schedule, updating as
    torch's does (keras_ref.torch_like); with ``norm_lr_scale`` != 1, ``model``'s normalisation variables step at
    that multiple of the learning rate, their weight decay divided by it (torch's second parameter group)."""
    name = optimizer["class_path"].rsplit(".", 1)[-1]
    args = dict(optimizer.get("init_args", {}))
    lr = _number("model.optimizer.init_args.lr", args.pop("lr", 1e-3), 0.0, MAX_FLOAT, low_open=True)
    if schedule == "warmup_cosine":  # the curve of lightning_impl.tasks.schedules.warmup_cosine
        warmup = int(total_steps * warmup_fraction)
        lr = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, total_steps - warmup), warmup_target=lr, warmup_steps=warmup
        )
    elif schedule != "constant":
        raise RecipeError(f"model.schedule: unknown schedule {schedule!r} (warmup_cosine, constant)")
    weight_decay = _number("model.optimizer.init_args.weight_decay", args.pop("weight_decay", 0.01 if name == "AdamW" else 0.0),
                           0.0, MAX_FLOAT)
    if name in ("Adam", "AdamW"):
        betas = args.pop("betas", (0.9, 0.999))
        betas = [_number(f"model.optimizer.init_args.betas[{i}]", b, 0.0, 1.0, high_open=True) for i, b in enumerate(betas)]
        eps = _number("model.optimizer.init_args.eps", args.pop("eps", 1e-8), 0.0, 1.0, low_open=True)
        kwargs = dict(beta_1=betas[0], beta_2=betas[1], epsilon=eps)
    elif name == "SGD":
        momentum = _number("model.optimizer.init_args.momentum", args.pop("momentum", 0.0), 0.0, 1.0, high_open=True)
        kwargs = dict(momentum=momentum, nesterov=args.pop("nesterov", False))
    else:
        raise RecipeError(f"model.optimizer.class_path: no Keras translation for {optimizer['class_path']!r}")
    if args:
        raise RecipeError(f"model.optimizer.init_args.{sorted(args)[0]}: no Keras translation for {name}")
    # torch's updates, not Keras' (keras_ref.torch_like): Adam's ε on √v̂, SGD's momentum convention, and torch's
    # weight_decay as it is: decoupled for AdamW, an L2 term in the gradient for Adam and SGD.
    _norm_scale_translates(name, norm_lr_scale)
    if name == "AdamW":
        return TorchAdamW(lr, weight_decay=weight_decay, **kwargs)
    made = (TorchAdam if name == "Adam" else TorchSGD)(lr, l2=weight_decay, **kwargs)
    if norm_lr_scale != 1.0:
        if model is None:
            raise ValueError("make_optimizer: norm_lr_scale needs the model whose normalisation variables it scales")
        made.scale_norms(norm_variables(model), norm_lr_scale)
    return made


@contextlib.contextmanager
def dtype_policy(name: str):
    """``with dtype_policy(name):`` layers built inside compute and store as the policy says (Keras reads the global
    policy when a layer is made); the previous policy is back afterwards, so that nothing else built in the
    process (a parity check's float64 twin) inherits it."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
