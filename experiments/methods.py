"""The report's methods: how every model is trained, read from the recipes themselves (configs/*.yaml), and why.

The recipe table is built from the YAML files the trainers read, so it cannot drift from what runs; the precision
column is what an unset precision resolves to on the machine that builds the report (core.precision). The reasons
are the one thing written here by hand: they explain choices, they state no result."""

from __future__ import annotations

from core import configs
from core.precision import resolve

# (recipe, what it trains, why it is trained that way): the order of the report.
RECIPES = [
    ("mnist_specified_cnn.yaml", "the specified CNN (exercise 1)",
     "The default recipe. Adam adapts each weight's step, so one learning rate serves every layer of a network "
     "nobody has tuned; a short linear warm-up keeps the first updates of freshly initialised weights small while "
     "Adam's moment estimates are still noisy, and cosine decay ends on small steps that settle the weights instead "
     "of leaving them bouncing at the peak rate. The same recipe starts both ladders, so their first step is this "
     "network as the exercise specifies it."),
    ("mnist_improved.yaml", "the improved CNN, MNIST",
     "The steps of the MNIST ladder named in its header, merged: BatchNorm (larger stable learning rates), two "
     "convolutions per stage at 16-32-64 filters (depth where the features are, at a width a 2-core CPU trains "
     "in minutes: docs/performance.md measures it), rotation/shift augmentation and label smoothing "
     "(against memorising the training digits), then more epochs at a larger batch; at test time each digit is "
     "scored as the mean over nine copies moved by up to one pixel, which evens out how differently the net answers "
     "for slightly different placements of the same digit, at no training cost. Each step's evidence is its ladder row."),
    ("cifar10_improved.yaml", "the improved CNN, CIFAR-10",
     "The CIFAR-10 ladder's steps, merged: colour photographs need far more capacity than digits (48-192-192 "
     "filters, global average pooling instead of a wide dense head), mirror-and-shift augmentation (a cat facing "
     "left is still a cat; digits are never mirrored), and a lower peak rate at batch 128 for the wider network."),
    ("cifar10_whitened.yaml", "the final CNN, CIFAR-10",
     "The exercise's changes (BatchNorm, more filters, mirror-and-shift augmentation, a warm-up and decay) in the "
     "layout of the fastest GPU recipes (airbench), because a CPU trains only a few epochs in minutes: a frozen first "
     "layer that whitens 2×2 patches with statistics of training images, so the first trained layers see decorrelated "
     "inputs; convolutions initialised as identities and BatchNorm with frozen scales, so a deep net starts as a "
     "shallow one; SGD with Nesterov momentum at a large rate, the BatchNorm shifts 64× faster; label smoothing "
     "against over-confident mistakes; and each photograph scored as the mean over itself and its mirror."),
    ("denoise_reference.yaml", "the denoising autoencoder (exercise 2)",
     "The exercise's autoencoder with the mean squared error it is scored by (PSNR is a function of it), Adam with "
     "warm-up and cosine decay as above, trained at one noise level σ and evaluated on noisy copies fixed once."),
    ("denoise_unet.yaml", "the U-Net denoiser (exercise 2, improved)",
     "Skip connections carry the fine detail the bottleneck of an autoencoder must otherwise squeeze through, "
     "which is what a denoiser loses first; small batches (chosen on validation, docs/denoise.md) give more "
     "updates per epoch."),
]

HEADER = ["recipe", "trains", "optimiser (peak lr)", "schedule", "batch", "epochs", "precision here", "augmentation",
          "label smoothing"]


def _schedule(model: dict) -> str:
    schedule = model.get("schedule", "constant")
    if schedule == "warmup_cosine":
        return f"{100 * model.get('warmup_fraction', 0.1):g} % linear warm-up, then cosine to 0"
    return schedule


def _augmentation(data: dict, model: dict) -> str:
    augment = (data.get("init_args", data)).get("augment")
    args = {}
    if isinstance(augment, dict):  # a class with its arguments: {class_path, init_args}
        augment, args = augment["class_path"], augment.get("init_args", {})
    name = augment.rsplit(".", 1)[-1] if augment else None
    mirrored = ", horizontal flip" if args.get("flip", True) else ""
    text = "none" if not augment else {
        "digit_augment": "rotation ±10°, shift ±10 %",
        "crop_flip_augment": "shift ±4 px, horizontal flip",
        "CropFlipAugment": f"shift ±{args.get('padding', 4)} px{mirrored}"}.get(name, name)
    shift, flip = model.get("shift_tta"), model.get("flip_tta")
    if shift and flip:  # core.shift_views, and their mirrors
        text += f"; tested on 18 views: 9 shifted by up to {shift} px and their mirrors"
    elif shift:
        text += f"; tested on 9 views shifted by up to {shift} px"
    elif flip:
        text += "; tested on the image and its mirror"
    return text


def recipe_row(name: str, trains: str) -> list[str]:
    """A recipe as the table shows it, every cell read from its YAML file."""
    config = configs.load(name)
    trainer, model, data = config.get("trainer", {}), config["model"], config.get("data", {})
    optimizer = model.get("optimizer", {})
    args = optimizer.get("init_args", {})
    extras = [f"{k} {v:g}" for k, v in args.items() if k != "lr" and isinstance(v, (int, float)) and not isinstance(v, bool)]
    if args.get("nesterov"):
        extras.append("Nesterov")
    opt = f"{optimizer.get('class_path', 'Adam').rsplit('.', 1)[-1]} ({args.get('lr', 0.001):g}" + "".join(f", {e}" for e in extras) + ")"
    init = data.get("init_args", data)
    smoothing = model.get("label_smoothing")
    return [f"configs/{name}", trains, opt, _schedule(model), str(init.get("batch_size", "")),
            str(trainer.get("max_epochs", "")), resolve(trainer.get("precision"), trainer.get("accelerator")),
            "none (noise drawn afresh each batch)" if configs.recipe_task(config) == "denoiser" else _augmentation(data, model),
            "—" if smoothing is None else f"{smoothing:g}"]


def recipe_rows() -> list[list[str]]:
    return [recipe_row(name, trains) for name, trains, _ in RECIPES]


def reasons() -> list[tuple[str, str]]:
    """(recipe, why) for every recipe of the table."""
    return [(f"configs/{name}", why) for name, _, why in RECIPES]
