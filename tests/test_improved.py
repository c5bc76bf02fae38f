"""The improved CNN family, its augmentation and the ablation ladder, in both frameworks.

Every ladder step is built from its merged config and trained for two steps in Lightning (the real
ImageClassifier/DataModule path) and in Keras (the twin recipe); no full training here.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import keras_ref  # noqa: F401  (torch backend before keras)
import keras
import lightning as L
import numpy as np
import pytest
import torch
import yaml
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from keras_ref import augment as kaug
from keras_ref import recipes
from keras_ref import train as ktrain
from keras_ref.models import improved_cnn as keras_improved_cnn
from experiments import ablation
from core.runs import UsageError
from lightning_impl.data.augment import CropFlipAugment, DigitAugment, affine, digit_augment, shift_crop
from lightning_impl.tasks.classifier import ImageClassifier
from lightning_impl.data.datamodules import DATAMODULES
from lightning_impl.models.improved_cnn import ImprovedCNN
from lightning_impl.models import SpecifiedCNN
from lightning_impl.train import TrainCLI
from parity.checks import check_equivalence, check_parameters, check_shapes
from parity.registry import all_pairs

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("mnist", "cifar10")
VAL_IMAGES = 6000  # MNIST's validation split: 10 % of 60,000


def fake_result(acc: float, epochs: int = 1, n: int = VAL_IMAGES) -> dict:
    """What a ladder reads of a finished run, for a model that gets ``acc`` of ``n`` validation images right. The
    wrong images are the first ones, so a better model's errors are a subset of a worse one's: every image on
    which two such runs disagree favours the better one (McNemar's test sees the whole difference)."""
    wrong = round((1 - acc) * n)
    return {"best_val_acc": acc, "test_acc": 0.5, "parameters": 1, "epochs": epochs, "epoch_time_s": [1.0],
            "val_images": n, "val_errors": list(range(wrong))}


@pytest.fixture(autouse=True)
def native_bf16(monkeypatch):
    """The ladders' bf16 step trains where bf16 is native and is skipped elsewhere (tests/test_configs.py checks
    both); these tests see every step, whatever this machine's CPU."""
    from core import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)


@pytest.fixture(scope="module")
def datamodules():
    dms = {}
    for name in DATASETS:
        dm = DATAMODULES[name](batch_size=16, eval_batch_size=64, download=False)
        dm.prepare_data()
        dm.setup()
        dms[name] = dm
    return dms


def ladder_configs(dataset: str) -> list[tuple[str, dict]]:
    steps = ablation.load_ladder(dataset)
    return [(s.name, ablation.merged_config(steps[: i + 1])) for i, s in enumerate(steps)]


LADDER = [(d, name, cfg) for d in DATASETS for name, cfg in ladder_configs(d)]
# Recipes outside the ladders: the specified CNN's augmented recipe (parity check 5), the fast CPU CIFAR-10 one.
RECIPES = [
    ("mnist", "specified_cnn_augmented", yaml.safe_load((ROOT / "configs/mnist_specified_cnn_augmented.yaml").read_text())),
    ("cifar10", "fast", yaml.safe_load((ROOT / "configs/cifar10_fast.yaml").read_text())),
]
# Steps that change nothing Keras sees are the previous step's Keras recipe: test it once.
KERAS_LADDER = [
    step for i, step in enumerate(LADDER)
    if i == 0 or LADDER[i - 1][0] != step[0] or recipes.classifier_recipe(LADDER[i - 1][2]) != recipes.classifier_recipe(step[2])
]


# --- the architecture ---------------------------------------------------------------------------------


def test_defaults_are_the_specified_cnn():
    improved, specified = ImprovedCNN(), SpecifiedCNN()
    assert sum(p.numel() for p in improved.parameters()) == sum(p.numel() for p in specified.parameters()) == 58_796
    with torch.no_grad():
        for a, b in zip(improved.parameters(), specified.parameters(), strict=True):
            a.copy_(b)
    x = torch.randn(4, 1, 28, 28)
    torch.testing.assert_close(improved(x), specified(x))


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="one entry per stage"):
        ImprovedCNN(widths=(32, 64, 128))
    with pytest.raises(ValueError, match="dropout"):
        ImprovedCNN(dropout=1.0)
    with pytest.raises(ValueError, match="to nothing"):
        ImprovedCNN(widths=(8,) * 6, kernel_sizes=(3,) * 6, paddings=("same",) * 6)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["improved_cnn_mnist", "improved_cnn_cifar10"])
def test_parity_of_the_final_models(name):
    """Per-layer parameter counts and output shapes, BatchNorm/Dropout settings and outputs (weights copied)."""
    pair = all_pairs()[name]
    rows = check_parameters(pair) + check_shapes(pair)
    if pair.dataset == "mnist":  # the CIFAR-10 net is the same code, four times the work
        rows += check_equivalence(pair)
    failed = [r for r in rows if not r.passed]
    assert not failed, failed


# --- augmentation -------------------------------------------------------------------------------------


@pytest.mark.parametrize("angle,shift", [(0.0, (3, -2)), (10.0, (2, 1)), (-7.0, (-3, 4)), (90.0, (0, 0))])
def test_affine_is_torchvisions(angle, shift):
    x = torch.rand(3, 1, 28, 28)
    ours = affine(x, torch.full((3,), angle), torch.tensor([shift] * 3, dtype=torch.float))
    ref = torch.stack([
        TF.affine(im, angle=angle, translate=list(shift), scale=1.0, shear=[0.0, 0.0],
                  interpolation=v2.InterpolationMode.BILINEAR)
        for im in x
    ])
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)


def test_shift_crop_is_torchvisions_pad_and_crop():
    x = torch.rand(4, 3, 32, 32)
    offsets = torch.tensor([[0, 8], [4, 4], [8, 0], [1, 7]])  # (left, top)
    ref = torch.stack([TF.crop(TF.pad(im, [4]), int(t), int(l), 32, 32) for im, (l, t) in zip(x, offsets)])
    torch.testing.assert_close(shift_crop(x, 4, offsets), ref)


def test_parameters_are_drawn_per_image():
    torch.manual_seed(0)
    same = torch.rand(1, 1, 28, 28).expand(16, 1, 28, 28).contiguous()
    out = DigitAugment()(same)
    assert len({tuple(o.flatten()[:50].tolist()) for o in out}) == 16
    out = CropFlipAugment()(torch.rand(1, 3, 32, 32).expand(16, 3, 32, 32).contiguous())
    assert len({tuple(o.flatten()[:50].tolist()) for o in out}) > 8


@pytest.mark.slow
def test_digits_are_never_flipped(datamodules):
    dm = datamodules["mnist"]
    x = dm.normalize(dm.test_set.images[:200])
    torch.testing.assert_close(DigitAugment(degrees=0.0, translate=0.0)(x), x)  # no hidden flip
    # A stroke in the left half stays in the left half under every rotation (<= 10 deg) and shift (<= 2.8 px).
    torch.manual_seed(0)
    strokes = torch.full((500, 1, 28, 28), float(x.amin()))
    strokes[:, :, 8:20, 5:9] = float(x.amax())
    out = digit_augment(strokes) - x.amin()
    columns = torch.arange(28.0)
    centre = (out.sum(dim=(1, 2)) * columns).sum(1) / out.sum(dim=(1, 2, 3))
    assert centre.lt(11).all() and centre.std() > 0.5  # moved, never mirrored (a flip puts it near 21)
    out = digit_augment(x)
    # The fill is black, not the normalised zero (grey): the corners of shifted digits stay black.
    assert torch.isclose(out.amin(), x.amin()) and torch.isclose(out[:, :, 0, 0], x.amin()).float().mean() > 0.95
    assert not any(isinstance(layer, keras.layers.RandomFlip) for layer in kaug.digit_augmentation().layers)


@pytest.mark.slow
def test_keras_digit_augmentation_is_the_twin(datamodules):
    """The Keras layer moves a stroke as DigitAugment does (same spread, never mirrored), keeps its mass and
    fills with black; identity with zero ranges and at inference."""
    keras.utils.set_random_seed(0)
    dm = datamodules["mnist"]
    x = dm.normalize(dm.test_set.images[:200]).permute(0, 2, 3, 1).numpy()
    aug = kaug.digit_augmentation()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(aug(x, training=False)), x)
    still = kaug.digit_augmentation(degrees=0.0, translate=0.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(still(x, training=True)), x, atol=1e-6)
    black, white = float(x.min()), float(x.max())
    strokes = np.full((500, 28, 28, 1), black, dtype="float32")
    strokes[:, 8:20, 5:9] = white
    out = keras.ops.convert_to_numpy(aug(strokes, training=True)) - black
    centre = (out.sum(axis=(1, 3)) * np.arange(28.0)).sum(1) / out.sum(axis=(1, 2, 3))
    # Lightning's twin on the same strokes (the test above): shifts uniform in +-2.8 px, so std ~1.6 px.
    torch.manual_seed(0)
    twin = digit_augment(torch.from_numpy(strokes).permute(0, 3, 1, 2)) - black
    twin_centre = (twin.sum(dim=(1, 2)) * torch.arange(28.0)).sum(1) / twin.sum(dim=(1, 2, 3))
    assert (centre < 11).all() and abs(centre.std() - float(twin_centre.std())) < 0.3
    assert abs(centre.mean() - 6.5) < 0.3  # unbiased: rotations and shifts are symmetric
    np.testing.assert_allclose(out.sum(axis=(1, 2, 3)).mean(), (strokes - black).sum(axis=(1, 2, 3)).mean(), rtol=0.02)
    out = keras.ops.convert_to_numpy(aug(x, training=True))
    assert np.isclose(out.min(), black, atol=1e-5) and np.isclose(out[:, 0, 0, 0], black, atol=1e-5).mean() > 0.95


def test_cifar_flip_is_a_fair_coin():
    torch.manual_seed(0)
    x = torch.rand(400, 3, 8, 8)
    out = CropFlipAugment(padding=0)(x)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    assert ((out == x).flatten(1).all(1) | flipped).all()
    assert 0.4 < flipped.float().mean() < 0.6


class Recorder(ImageClassifier):
    """Keeps the batches each stage's step receives."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = {"train": [], "val": [], "test": []}

    def training_step(self, batch, batch_idx):
        self.seen["train"].append(batch[0].clone())
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        self.seen["val"].append(batch[0].clone())
        super().validation_step(batch, batch_idx)

    def test_step(self, batch, batch_idx):
        self.seen["test"].append(batch[0].clone())
        super().test_step(batch, batch_idx)


def test_augmentation_reaches_training_batches_only(datamodules, tmp_path):
    dm = datamodules["mnist"]
    calls = []

    def spy(x):
        calls.append(len(x))
        return digit_augment(x)

    dm.augment = spy
    try:
        model = Recorder(net=ImprovedCNN(), schedule="constant")
        trainer = L.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=2, limit_test_batches=2,
                            logger=False, enable_checkpointing=False, enable_progress_bar=False,
                            enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0)
        trainer.fit(model, datamodule=dm)
        trainer.test(model, datamodule=dm, verbose=False)
    finally:
        dm.augment = None
    assert calls == [16, 16]  # the two training batches, nothing else
    n = dm.hparams.eval_batch_size
    for stage, dataset in (("val", dm.val_set), ("test", dm.test_set)):
        assert len(model.seen[stage]) == 2
        for i, x in enumerate(model.seen[stage]):  # evaluation loaders are not shuffled
            torch.testing.assert_close(x, dm.normalize(dataset.images[i * n:(i + 1) * n]))
    # Training batches were changed: no augmented image equals its normalised original anywhere in the split.
    x = model.seen["train"][0]
    originals = dm.normalize(dm.train_set.images).flatten(1)
    assert torch.cdist(x.flatten(1), originals).amin(dim=1).gt(1e-3).all()


def test_keras_augmentation_is_off_at_inference():
    net = keras_improved_cnn((32, 32, 3), 10, batch_norm=True)
    model = ktrain.training_model(net, kaug.crop_flip_augmentation())
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=False)),
                               keras.ops.convert_to_numpy(net(x, training=False)), atol=1e-6)
    assert not np.allclose(keras.ops.convert_to_numpy(model.layers[0](x, training=True)), x)


# --- the ladder ---------------------------------------------------------------------------------------


def test_augmentation_in_yaml_by_function_or_by_class():
    """``augment`` takes an import path (a function, its defaults) or class_path/init_args, in both frameworks."""
    improved, specified, fast = (
        TrainCLI(ImageClassifier, None, subclass_mode_data=True, run=False, seed_everything_default=0,
                 args=["--config", str(ROOT / "configs" / name), "--trainer.logger", "false"])
        for name in ("mnist_improved.yaml", "mnist_specified_cnn_augmented.yaml", "cifar10_fast.yaml")
    )
    assert improved.datamodule.augment is digit_augment
    augment = specified.datamodule.augment
    assert isinstance(augment, DigitAugment) and (augment.degrees, augment.translate) == (5.0, 0.07)
    assert isinstance(fast.datamodule.augment, CropFlipAugment) and fast.datamodule.augment.padding == 2
    assert isinstance(fast.model.net.pool1, torch.nn.MaxPool2d)
    names = [n for n, _ in fast.model.net.named_children()]
    assert names.index("pool1") == names.index("relu1_1") + 1  # pool_after: first
    layer = recipes.classifier_recipe(RECIPES[0][2])
    assert layer["augment"]["name"] == "DigitAugment" and layer["net"] == "SpecifiedCNN"
    rotate_shift = kaug.AUGMENTATIONS[layer["augment"]["name"]](**layer["augment"]["init_args"]).layers[0]
    assert (rotate_shift.degrees, rotate_shift.translate) == (5.0, 0.07)
    fast_recipe = recipes.classifier_recipe(RECIPES[1][2])
    assert fast_recipe["flip_tta"] is True  # translated (keras_ref.train.eval_logits), not dropped
    with pytest.raises(ValueError, match="flip_tta"):  # a value that is no switch is refused by name
        recipes.classifier_recipe({**RECIPES[1][2], "model": {**RECIPES[1][2]["model"], "flip_tta": "yes"}})
    # torch SGD's weight_decay (an L2 term in the gradient) is translated as it is (keras_ref.torch_like.TorchSGD)
    from keras_ref.torch_like import describe

    wd = RECIPES[1][2]["model"]["optimizer"]["init_args"]["weight_decay"]
    _, model = ktrain.build(fast_recipe, (32, 32, 3), 10, steps_per_epoch=1)
    assert describe(model.optimizer)["weight_decay"] == (wd, "coupled (L2 in the gradient)")


def test_flip_tta_averages_an_image_and_its_mirror_at_evaluation_only():
    torch.manual_seed(0)
    net = ImprovedCNN(in_channels=3, input_size=32, widths=(8, 8), kernel_sizes=(3, 3), paddings=("same", "same"))
    x = torch.randn(4, 3, 32, 32)
    model = ImageClassifier(net=net, flip_tta=True).eval()
    torch.testing.assert_close(model.eval_logits(x), (net(x) + net(x.flip(-1))) / 2)
    torch.testing.assert_close(model.eval_logits(x.flip(-1)), model.eval_logits(x))  # mirror-invariant
    torch.testing.assert_close(ImageClassifier(net=net).eval_logits(x), net(x))  # off by default
    fast = ImageClassifier(net=net, channels_last=True)  # a memory layout: same values
    assert net.conv1_1.weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast(x), ImageClassifier(net=net)(x), atol=1e-5, rtol=1e-5)
    assert not yaml.safe_load((ROOT / "configs/mnist_improved.yaml").read_text())["model"].get("flip_tta")


def test_shift_tta_averages_nine_shifted_views_in_both_frameworks_at_test_and_prediction_only():
    """The Lightning classifier and the Keras trainer take the same nine views (core.shift_views: edges repeated)
    and, with copied weights, compute the same averaged logits; per-epoch validation scores plain images."""
    from core import shift_views
    from parity.transfer import torch_to_keras

    torch.manual_seed(0)
    net = ImprovedCNN(widths=(4, 8), kernel_sizes=(3, 3), paddings=("same", "same"), batch_norm=True).eval()
    x = torch.randn(5, 1, 28, 28)
    model = ImageClassifier(net=net, shift_tta=1).eval()
    views = shift_views.views_nhwc(x.permute(0, 2, 3, 1).numpy(), 1)
    assert len(views) == 9 and np.array_equal(views[0], x.permute(0, 2, 3, 1).numpy())
    assert np.array_equal(views[1][:, :, 0], views[1][:, :, 1])  # moved right by one: the left column repeated
    expected = sum(net(torch.from_numpy(v).permute(0, 3, 1, 2).contiguous()) for v in views) / 9
    with torch.no_grad():
        torch.testing.assert_close(model.eval_logits(x), expected)
        torch.testing.assert_close(model.eval_logits(x, shifted=False), net(x))  # what validation_step scores
        torch.testing.assert_close(model.predict_step((x,), 0), expected.softmax(dim=-1))
        assert not torch.allclose(model.eval_logits(x), net(x))  # the views do change the answer
    twin = keras_improved_cnn((28, 28, 1), 10, widths=(4, 8), kernel_sizes=(3, 3),
                              paddings=("same", "same"), batch_norm=True)
    torch_to_keras(net, twin, (1, 28, 28))
    nhwc = x.permute(0, 2, 3, 1).numpy()
    with torch.no_grad():
        np.testing.assert_allclose(ktrain.eval_logits(twin, nhwc, 1), model.eval_logits(x).numpy(), atol=1e-5)
        np.testing.assert_allclose(ktrain.eval_logits(twin, nhwc, 0), net(x).numpy(), atol=1e-5)
        both = ImageClassifier(net=net, shift_tta=1, flip_tta=True).eval()  # shifts and their mirrors, 18 views
        np.testing.assert_allclose(ktrain.eval_logits(twin, nhwc, 1, flip_tta=True), both.eval_logits(x).numpy(), atol=1e-5)
        mirrored = ImageClassifier(net=net, flip_tta=True).eval()  # what a flip_tta recipe's validation scores
        np.testing.assert_allclose(ktrain.eval_logits(twin, nhwc, 0, flip_tta=True),
                                   mirrored.eval_logits(x, shifted=False).numpy(), atol=1e-5)
    for bad in (-1, 0.5, True):
        with pytest.raises(ValueError, match="shift_tta"):
            ImageClassifier(net=net, shift_tta=bad)
        with pytest.raises(ValueError, match="shift_tta"):
            recipes.classifier_recipe({"model": {"shift_tta": bad}})
    assert recipes.classifier_recipe({"model": {"shift_tta": 2}})["shift_tta"] == 2


def test_keras_cross_entropy_is_the_training_loss():
    logits, labels = np.random.default_rng(0).normal(size=(6, 10)), np.array([0, 3, 9, 1, 1, 7])
    for smoothing in (0.0, 0.1):
        expected = torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels),
                                                     label_smoothing=smoothing)
        assert ktrain.cross_entropy(logits, labels, smoothing) == pytest.approx(float(expected), rel=1e-12)


def test_final_configs_are_the_chains_of_the_steps_they_name():
    for dataset in DATASETS:
        text = (ROOT / "configs" / f"{dataset}_improved.yaml").read_text()
        kept = ablation.steps_of(text)
        steps = ablation.load_ladder(dataset)
        assert kept[0] == steps[0].name and set(kept) <= {s.name for s in steps}
        chain = [s for s in steps if s.name in kept]
        assert yaml.safe_load(text) == ablation.merged_config(chain), (
            f"regenerate configs/{dataset}_improved.yaml from its ladder (the command in its header)")
        left_out = [line.split()[3] for line in text.splitlines() if line.startswith("# left out: ")]
        assert sorted(kept + left_out) == sorted(s.name for s in steps)  # every step either held or accounted for


def test_write_config_writes_the_kept_chain_of_a_ladder(monkeypatch, tmp_path):
    val = {"00_base": 0.990, "01_batch_norm": 0.992, "02_depth_width": 0.994, "03_augmentation": 0.995,
           "04_label_smoothing": 0.996, "05_dropout": 0.995, "06_schedule": 0.997,
           "07_shift_tta": 0.998}

    def fake_run(config_path, seed, epochs, train_fraction, out, name):
        return fake_result(val[name], epochs)

    monkeypatch.setattr(ablation, "run_lightning", fake_run)
    ladder = tmp_path / "ladder"
    ablation.run_ladder("mnist", "smoke", seeds=1, epochs=1, framework="lightning", keep_all=False, out=ladder)
    (ladder / "ladder.json").write_text(json.dumps({"dataset": "mnist", "budget": "smoke", "framework": "lightning"}))
    out = tmp_path / "improved.yaml"
    ablation.main(["--dataset", "mnist", "--resume", str(ladder), "--write-config", str(out)])
    text = out.read_text()
    assert ablation.steps_of(text) == [k for k in val if k != "05_dropout"]
    # 6 images worse, all of them against the step: McNemar's p = 2 / 2^6
    assert "# left out: 05_dropout (worse, -0.10 pp validation, McNemar p 0.031, 1 seed)" in text
    config = yaml.safe_load(text)
    schedule = yaml.safe_load((ROOT / "configs/ablation/mnist/06_schedule.yaml").read_text())
    assert "dropout" not in config["model"]["net"]["init_args"]
    assert config["trainer"]["max_epochs"] == schedule["trainer"]["max_epochs"]  # the last step's epochs, merged
    with pytest.raises(SystemExit):  # which decisions? the ladder's, or explicitly every step
        ablation.main(["--dataset", "mnist", "--write-config", str(out)])
    ablation.main(["--dataset", "mnist", "--keep-all", "--write-config", str(out)])
    assert ablation.steps_of(out.read_text()) == list(val)
    ablation.main(["--dataset", "mnist", "--steps", "0,2", "--write-config", str(out)])
    assert ablation.steps_of(out.read_text()) == ["00_base", "02_depth_width"]
    assert "# left out: 01_batch_norm (not chosen: --steps)" in out.read_text()


# The optimisation budget is one change made of knobs that move together: epochs, batch, learning rate, schedule.
SCHEDULE_KEYS = {"trainer.max_epochs", "data.init_args.batch_size", "model.optimizer.init_args.lr", "model.schedule",
                 "model.warmup_fraction"}


def leaf_keys(tree: dict, prefix: str = "") -> set[str]:
    return set().union(*[leaf_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}"}
                         for k, v in tree.items()])


def test_each_step_changes_one_thing():
    for dataset in DATASETS:
        for step in ablation.load_ladder(dataset)[1:]:
            assert step.change.startswith("+ "), step.name
            if step.name.endswith("_schedule"):
                assert leaf_keys(step.overlay) <= SCHEDULE_KEYS, f"{step.name} touches {sorted(leaf_keys(step.overlay))}"
            else:
                assert len(step.overlay) == 1, f"{step.name} touches {sorted(step.overlay)}"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:LightningCLI's args parameter")
@pytest.mark.parametrize("dataset,name,config", LADDER + RECIPES, ids=[f"{d}-{n}" for d, n, _ in LADDER + RECIPES])
def test_step_trains_in_lightning(dataset, name, config, datamodules, tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = TrainCLI(ImageClassifier, None, subclass_mode_data=True, run=False,
                   args=["--config", str(path), "--trainer.logger", "false"], seed_everything_default=0)
    dm = datamodules[dataset]
    dm.augment = cli.datamodule.augment
    try:
        before = [p.detach().clone() for p in cli.model.parameters()]
        trainer = L.Trainer(max_steps=2, limit_val_batches=0, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                            precision=cli.trainer.precision)
        trainer.fit(cli.model, datamodule=dm)
    finally:
        dm.augment = None
    assert trainer.global_step == 2
    assert torch.isfinite(trainer.callback_metrics["train_loss_step"])
    assert any(not torch.equal(a, b) for a, b in zip(before, cli.model.parameters()))


@pytest.mark.slow
@pytest.mark.parametrize("dataset,name,config", KERAS_LADDER + RECIPES[:1], ids=[f"{d}-{n}" for d, n, _ in KERAS_LADDER + RECIPES[:1]])
def test_step_trains_in_keras(dataset, name, config, datamodules):
    recipe = recipes.classifier_recipe(config)
    recipe["epochs"] = 1
    dm = datamodules[dataset]
    x = dm.normalize(dm.train_set.images[:16]).permute(0, 2, 3, 1).numpy()
    y = np.eye(10, dtype="float32")[dm.train_set.labels[:16].numpy()]
    keras.utils.set_random_seed(0)
    net, model = ktrain.build(recipe, x.shape[1:], 10, steps_per_epoch=2)
    before = [w.copy() for w in net.get_weights()]
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, net.get_weights()))
    torch_net = ImprovedCNN(**config["model"]["net"].get("init_args", {}))
    assert sum(p.numel() for p in torch_net.parameters()) == sum(int(np.prod(w.shape)) for w in net.trainable_weights)


def test_ladder_selects_on_validation_and_writes_reports(monkeypatch, tmp_path):
    # Fake runs: validation rises except at the dropout step; test accuracy is reported but never decides.
    val = {"00_base": 0.90, "01_batch_norm": 0.95, "02_dropout": 0.94, "03_depth_width": 0.97,
           "04_augmentation": 0.9702, "05_schedule": 0.99}
    seen_configs = {}

    def fake_run(config_path, seed, epochs, train_fraction, out, name):
        seen_configs[name] = yaml.safe_load(Path(config_path).read_text())
        return fake_result(val[name] + 0.001 * seed, epochs, n=5000)

    monkeypatch.setattr(ablation, "run_lightning", fake_run)
    rows = ablation.run_ladder("cifar10", "smoke", seeds=2, epochs=1, framework="lightning", keep_all=False, out=tmp_path)
    # augmentation: +0.02 pp, 1 image per seed: within noise, so the tie goes to the simpler recipe
    assert [r["decision"] for r in rows] == ["first", "kept", "worse", "kept", "within noise", "kept"]
    assert rows[4]["val_right_only_new"] == 2 and rows[4]["val_right_only_kept"] == 0 and rows[4]["p_value"] == 0.5
    assert rows[5]["val_right_only_new"] == 2 * 100 and rows[5]["p_value"] < 1e-50  # paired with 03, the last kept
    config = seen_configs["03_depth_width"]
    net = config["model"]["net"]["init_args"]
    assert net["batch_norm"] and "dropout" not in net  # built on the kept steps only
    assert "augment" not in seen_configs["05_schedule"]["data"]["init_args"]
    assert config["trainer"]["precision"] is None and "ablation" not in config  # unset: bf16 where native
    assert rows[1]["val_acc_std"] == pytest.approx(0.001 * 2**0.5 / 2)
    for f in ("ladder.md", "ladder.csv", "ladder.png", "results.json"):
        assert (tmp_path / f).stat().st_size > 0
    assert len(list(csv.DictReader(open(tmp_path / "ladder.csv")))) == len(val)
    assert "| 2 / 0 | 0.5 | within noise |" in (tmp_path / "ladder.md").read_text()


def test_the_keep_rule_is_mcnemar_on_the_same_seeds_validation_images():
    step = ablation.Step("01_batch_norm", "+ BatchNorm", {})

    def runs(wrong_per_seed):
        return [{"seed": s, "step": "x", "val_errors": w} for s, w in enumerate(wrong_per_seed)]

    kept = runs([range(0, 40), range(0, 40)])
    # 10 images per seed fixed, none broken: 20 discordant pairs all one way, p = 2 / 2^20
    assert ablation.decide(step, runs([range(10, 40), range(10, 40)]), kept, 6000)[0] == "kept"
    # 10 images per seed fixed but 5 broken: a gain of 10 on 30 discordant images, p ~ 0.1: no evidence
    decision, test = ablation.decide(step, runs([range(10, 45), range(10, 45)]), kept, 6000)
    assert (decision, test.new_only, test.old_only) == ("within noise", 20, 10) and 0.05 < test.p < 0.1
    swapped = runs([list(range(5, 40)) + [100, 101, 102], list(range(5, 40)) + [100, 101, 102]])  # +5 -3 per seed
    decision, test = ablation.decide(step, swapped, kept, 6000)
    assert (decision, test.new_only, test.old_only) == ("within noise", 10, 6) and test.p > ablation.ALPHA
    assert ablation.decide(step, runs([range(0, 60), range(0, 60)]), kept, 6000)[0] == "worse"
    # seeds pair with seeds: runs of other seeds, or runs that did not record their errors, cannot be judged
    with pytest.raises(UsageError, match="no seed in common"):
        ablation.decide(step, [{"seed": 7, "step": "x", "val_errors": []}], kept, 6000)
    with pytest.raises(UsageError, match="not recorded by old"):
        ablation.decide(step, runs([[], []]), [{"seed": 0, "step": "old"}], 6000)


def test_no_ladder_step_is_a_speed_only_change(tmp_path, monkeypatch):
    """Precision and memory layout change no accuracy, so no step may be one: each step changes what trains here,
    with bf16 native or not, and in the Keras twin; and a step file that still asks for a keep rule of its own is
    refused by name."""
    from core import precision

    for native in (True, False):
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
        for dataset in DATASETS:
            steps = ablation.load_ladder(dataset)
            for k in range(1, len(steps)):
                before, after = ablation.merged_config(steps[:k]), ablation.merged_config(steps[: k + 1])
                assert not ablation.same_on_this_machine(after, before), steps[k].name
                assert not ablation.same_in_keras(after, before), steps[k].name
                assert "precision" not in steps[k].overlay.get("trainer", {}), steps[k].name
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "00_base.yaml").write_text("# base\nablation:\n  keep_if: not_worse\n")
    monkeypatch.setattr(ablation, "ladders", lambda: tmp_path)
    with pytest.raises(UsageError, match="speed-only"):
        ablation.load_ladder("toy")


def test_the_noise_floor_reads_the_validation_size_the_runs_recorded():
    assert ablation.validation_images("fashion_mnist", {}, [{"val_images": 3000}, {"val_images": 3000}]) == 3000
    # Runs finished before they recorded it: derived from the training set's size and the split's fraction.
    old_runs = [{"best_val_acc": 0.7}]
    assert ablation.validation_images("cifar10", {"data": {"init_args": {"val_fraction": 0.1}}}, old_runs) == 5000
    assert ablation.validation_images("mnist", {"data": {"init_args": {"val_fraction": 0.25}}}, old_runs) == 15000
    # every registered dataset (core.datasets.SPECS) has its size; one that is not cannot be derived
    assert ablation.validation_images("fashion_mnist", {}, old_runs) == 6000
    with pytest.raises(UsageError, match="val_images"):
        ablation.validation_images("svhn", {}, old_runs)


@pytest.mark.slow
def test_interrupted_ladder_resumes_without_rerunning_finished_runs(monkeypatch, tmp_path):
    calls = []

    def fake_run(config_path, seed, epochs, train_fraction, out, name):
        if (name, seed) == ("04_label_smoothing", 1) and not calls[-1:] == ["resumed"]:
            raise RuntimeError("power cut")
        calls.append((name, seed))
        return fake_result(0.9 + 0.01 * int(name[:2]), epochs)

    monkeypatch.setattr(ablation, "run_lightning", fake_run)
    with pytest.raises(RuntimeError, match="power cut"):
        ablation.run_ladder("mnist", "smoke", seeds=2, epochs=1, framework="lightning", keep_all=False, out=tmp_path)
    finished = json.loads((tmp_path / "results.json").read_text())
    assert [(r["step"], r["seed"]) for r in finished] == calls  # every finished run was saved, up to 03 seed 0
    assert calls[-1] == ("04_label_smoothing", 0)

    with pytest.raises(UsageError, match="--resume"):  # never overwrite a ladder by accident
        ablation.run_ladder("mnist", "smoke", seeds=2, epochs=1, framework="lightning", keep_all=False, out=tmp_path)
    calls.clear()
    calls.append("resumed")
    rows = ablation.run_ladder("mnist", "smoke", seeds=2, epochs=1, framework="lightning", keep_all=False, out=tmp_path, resume=True)
    steps = [s.name for s in ablation.load_ladder("mnist")]
    later = steps[steps.index("04_label_smoothing") + 1:]
    assert calls[1:] == [("04_label_smoothing", 1), *((name, s) for name in later for s in (0, 1))]
    assert len(rows) == len(steps) and all(r["seeds"] == 2 for r in rows)
    assert len(json.loads((tmp_path / "results.json").read_text())) == 2 * len(steps)

    # a changed setting (here the epochs) is a different run: nothing is reused
    calls[:] = ["resumed"]
    ablation.run_ladder("mnist", "smoke", seeds=1, epochs=2, framework="lightning", keep_all=False, out=tmp_path, resume=True)
    assert len(calls) == 1 + len(steps)
