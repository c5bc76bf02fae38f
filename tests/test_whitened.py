"""The whitened CIFAR-10 net (configs/cifar10_whitened.yaml): its stem whitens, its convolutions start as identities,
the task sets the stem from training images once, and the BatchNorm parameters get their own learning rate."""

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from lightning_impl.data.datamodules import CIFAR10DataModule
from lightning_impl.models.whitened_cnn import WhitenedCNN, patch_whitening
from lightning_impl.tasks.classifier import ImageClassifier
from lightning_impl.tasks.schedules import parameter_groups


def correlated_images(n: int = 256, seed: int = 0) -> torch.Tensor:
    """Smooth, channel-correlated images: neighbouring pixels and channels far from independent."""
    g = torch.Generator().manual_seed(seed)
    base = F.avg_pool2d(torch.randn(n, 1, 34, 34, generator=g), 3, stride=1)
    return torch.cat([base, 0.8 * base + 0.2 * torch.randn(n, 1, 32, 32, generator=g), -base], dim=1)


def test_the_stem_decorrelates_patches():
    images = correlated_images()
    filters = patch_whitening(images, 2, eps=0.0)
    out = F.conv2d(images.double(), filters.double())  # (N, 12, 31, 31): one output per eigenvector
    flat = out.permute(1, 0, 2, 3).reshape(12, -1)
    covariance = flat @ flat.T / flat.shape[1]
    # The raw patches' covariance is far from diagonal; whitened, it is the identity (the smallest eigenvalues of
    # these nearly rank-deficient patches are noisy, so compare the well-conditioned leading block).
    torch.testing.assert_close(covariance[:6, :6], torch.eye(6, dtype=torch.float64), atol=0.05, rtol=0)


def test_the_net_starts_as_identities_with_frozen_stem_and_scales():
    net = WhitenedCNN()
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert not net.whiten.weight.requires_grad and net.whiten.bias.requires_grad
    assert all(not bn.weight.requires_grad and bn.bias.requires_grad
               for bn in net.modules() if isinstance(bn, torch.nn.BatchNorm2d))
    conv = net.conv2_1  # 64 -> 128: its first 64 filters pass their input channel through
    x = torch.randn(1, 64, 8, 8)
    torch.testing.assert_close(F.conv2d(x, conv.weight[:64], padding=1), x)
    assert not bool(net.whitened)
    images = correlated_images(64)
    net.init_whitening(images)
    filters = patch_whitening(images, 2)
    torch.testing.assert_close(net.whiten.weight, torch.cat([filters, -filters]))
    assert bool(net.whitened) and "whitened" in net.state_dict()
    with pytest.raises(ValueError, match="positive width"):
        WhitenedCNN(widths=())


def test_the_keras_twin_sets_the_same_stem_from_the_same_images():
    import keras_ref  # noqa: F401  (Keras backend before keras)
    import keras
    import numpy as np

    from keras_ref.models.whitened_cnn import init_whitening, whitened_cnn

    images = correlated_images(64)
    net = WhitenedCNN(widths=(8, 16, 16))
    net.init_whitening(images)
    twin = whitened_cnn((32, 32, 3), 10, widths=(8, 16, 16))
    init_whitening(twin, images.permute(0, 2, 3, 1).numpy())
    kernel = keras.ops.convert_to_numpy(twin.get_layer("whiten").kernel)  # (kh, kw, in, out)
    np.testing.assert_array_equal(kernel.transpose(3, 2, 0, 1), net.whiten.weight.numpy())
    assert not twin.get_layer("whiten").kernel.trainable
    with pytest.raises(ValueError, match="no layer 'whiten'"):
        init_whitening(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), images.numpy())


def test_norm_parameters_get_the_scaled_rate_and_the_divided_decay():
    net = WhitenedCNN(widths=(8, 16, 16))
    plain = parameter_groups(net)
    assert all(p.requires_grad for p in plain) and not any(p is net.whiten.weight for p in plain)
    model = ImageClassifier(net=net, norm_lr_scale=64.0, schedule="constant",
                            optimizer=lambda params: torch.optim.SGD(params, lr=0.5, weight_decay=1e-3))
    optimizer = model.configure_optimizers()
    weights, norms = optimizer.param_groups
    bn_biases = {id(m.bias) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    assert {id(p) for p in norms["params"]} == bn_biases
    assert (weights["lr"], weights["weight_decay"]) == (0.5, 1e-3)
    assert norms["lr"] == pytest.approx(32.0) and norms["weight_decay"] == pytest.approx(1e-3 / 64)
    for bad in (0, -1.0, True, "64"):  # keras_ref.recipes refuses the same values
        with pytest.raises(ValueError, match="norm_lr_scale"):
            ImageClassifier(net=net, norm_lr_scale=bad)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_fit_sets_the_stem_from_training_images_once(tmp_path):
    dm = CIFAR10DataModule(batch_size=32, eval_batch_size=256, download=False)
    model = ImageClassifier(net=WhitenedCNN(widths=(8, 16, 16)))
    kwargs = dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False, enable_progress_bar=False,
                  enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu", devices=1)
    trainer = L.Trainer(**kwargs)
    trainer.fit(model, datamodule=dm)
    assert bool(model.net.whitened)
    expected = patch_whitening(dm.normalize(dm.train_set.images[:5000]), 2)
    torch.testing.assert_close(model.net.whiten.weight, torch.cat([expected, -expected]))
    # A run resumed from its checkpoint keeps the stem it trained with, even if the data changed meanwhile.
    stem = model.net.whiten.weight.clone()
    dm.train_set.images = dm.train_set.images.flip(0)
    resumed = ImageClassifier(net=WhitenedCNN(widths=(8, 16, 16)))
    L.Trainer(**{**kwargs, "max_epochs": 2}).fit(resumed, datamodule=dm, ckpt_path=trainer.checkpoint_callback.best_model_path)
    torch.testing.assert_close(resumed.net.whiten.weight, stem)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_the_keras_trainer_follows_the_whitened_recipe(tmp_path):
    """keras_ref.train on configs/cifar10_whitened.yaml: the stem set from the split's first images before training
    (and frozen), the BatchNorm shifts in the optimiser's fast group, validation scored on each image and its mirror
    (what picks the epoch and what metrics.csv logs), and the model card saying how it was tested."""
    import json
    from pathlib import Path

    import keras_ref  # noqa: F401  (Keras backend before keras)
    import keras
    import numpy as np

    from core.split import DatasetSplit
    from core.whitening import WHITENING_IMAGES, stem_filters
    from keras_ref.recipes import classifier_recipe
    from keras_ref.train import eval_logits, train

    recipe = {**classifier_recipe("cifar10_whitened.yaml"), "epochs": 1}
    metrics = train(recipe, runs_dir=str(tmp_path), verbose=0, limit_train=512, download=False)
    run = Path(metrics["run_dir"])
    card = json.loads((run / "model_card.json").read_text())
    assert card["flip_tta"] is True and metrics["parameters"] == 568_728
    split = DatasetSplit("cifar10", val_fraction=recipe["val_fraction"], split_seed=recipe["split_seed"], download=False)
    split.prepare()
    split.setup()
    (x_train, _), (x_val, y_val) = split.arrays("train"), split.arrays("val")
    model = keras.saving.load_model(run / "model.keras")
    expected = stem_filters(torch.from_numpy(x_train[:WHITENING_IMAGES].transpose(0, 3, 1, 2).copy()), 2)
    kernel = keras.ops.convert_to_numpy(model.get_layer("whiten").kernel).transpose(3, 2, 0, 1)
    np.testing.assert_allclose(kernel, expected.numpy(), rtol=0, atol=1e-6)  # set from the whole split, never trained
    mirrored = float((eval_logits(model, x_val, flip_tta=True).argmax(axis=1) == y_val).mean())
    assert metrics["best_val_acc"] == pytest.approx(mirrored, abs=1e-9)
    logged = (run / "metrics.csv").read_text().splitlines()
    assert "val_acc" in logged[0].split(",") and len(logged) == 2
