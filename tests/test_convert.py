"""python -m parity.convert: Keras -> Lightning and Lightning -> Keras for the registered architectures, each
conversion checked on real test images and refused beyond check 3's bound."""

from __future__ import annotations

import json

import keras
import lightning as L
import numpy as np
import pytest

import parity.convert as convert
import parity.transfer as transfer
from keras_ref.models import specified_cnn
from lightning_impl.card import load_model
from lightning_impl.data.datamodules import MNISTDataModule
from parity.checks import OUTPUT_TOL


def lightning_test_acc(ckpt) -> float:
    """What lightning_impl does with a checkpoint: load it (weights only) and test it on the MNIST test split."""
    module, card, _ = load_model(ckpt)
    assert card["task"] == "classifier" and card["dataset"] == "mnist" and len(card["mean"]) == 1
    dm = MNISTDataModule()
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1)
    return trainer.test(module, datamodule=dm, verbose=False)[0]["test_acc"]


def random_keras_file(tmp_path) -> str:
    keras.utils.set_random_seed(0)
    model = specified_cnn()
    path = tmp_path / "random.keras"
    model.save(path)
    return path


@pytest.mark.slow
def test_a_keras_file_becomes_a_checkpoint_lightning_loads(tmp_path, capsys):
    out = tmp_path / "converted.ckpt"
    result = convert.main([str(random_keras_file(tmp_path)), "--to-lightning", str(out), "--limit-test", "200",
                           "--json", str(tmp_path / "c.json")])
    assert result["pair"] == "specified_cnn" and result["max_diff"] <= OUTPUT_TOL
    assert "max |Lightning - Keras|" in capsys.readouterr().err
    module, card, _ = load_model(out)
    assert card["net"]["class_path"] == "lightning_impl.models.specified_cnn.SpecifiedCNN"
    assert json.loads((tmp_path / "c.json").read_text())["written"] == str(out)


def test_a_wrong_mapping_is_refused_and_nothing_is_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(transfer, "conv_kernel_to_torch", lambda k: k.transpose(3, 2, 1, 0))  # (out, in, kw, kh)
    out = tmp_path / "wrong.ckpt"
    with pytest.raises(SystemExit) as exit:
        convert.main([str(random_keras_file(tmp_path)), "--to-lightning", str(out), "--limit-test", "100"])
    err = capsys.readouterr().err
    assert exit.value.code == 2 and not out.exists()
    assert "error: not written: the converted model differs by" in err and "layer conv" in err


@pytest.mark.parametrize("argv,message", [
    (["nowhere.keras", "--to-lightning", "x.ckpt"], "no such file"),
    (["{tmp}/w.weights.h5", "--to-lightning", "x.ckpt"], "add --pair"),
    (["{tmp}/other.keras", "--to-lightning", "x.ckpt"], "none of the registered architectures"),
])
def test_sources_that_cannot_be_converted_are_refused_in_one_line(tmp_path, argv, message, capsys):
    (tmp_path / "w.weights.h5").write_bytes(b"")
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(tmp_path / "other.keras")
    with pytest.raises(SystemExit):
        convert.main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.slow
def test_round_trip_of_a_model_trained_for_one_epoch_keeps_its_test_accuracy(tmp_path):
    """Keras (one epoch) -> Lightning checkpoint -> Keras: the test accuracy of the 10,000 MNIST test images is
    the same in Lightning as in Keras (at most one image apart: independent float32 kernels), and the .keras file
    that comes back scores exactly what the original did (the weights are copied, not computed)."""
    from keras_ref.recipes import classifier_recipe
    from keras_ref.train import train

    recipe = {**classifier_recipe(), "epochs": 1, "seed": 0}
    metrics = train(recipe, runs_dir=str(tmp_path), verbose=0, limit_train=12000)
    run = metrics["run_dir"]
    ckpt, back = tmp_path / "from_keras.ckpt", tmp_path / "back.keras"
    to_l = convert.main([run, "--to-lightning", str(ckpt)])
    lightning_acc = lightning_test_acc(ckpt)
    to_k = convert.main([str(ckpt), "--to-keras", str(back)])

    model = keras.saving.load_model(back, compile=False)
    dm = MNISTDataModule()
    dm.prepare_data()
    dm.setup()
    x, y = dm.arrays("test")
    keras_back_acc = float((np.argmax(model.predict(x, batch_size=1000, verbose=0), 1) == y).mean())
    print(json.dumps({"keras_test_acc": metrics["test_acc"], "lightning_test_acc": lightning_acc,
                      "keras_round_trip_test_acc": keras_back_acc, "to_lightning": to_l, "to_keras": to_k}))
    assert to_l["max_diff"] <= OUTPUT_TOL and to_k["max_diff"] <= OUTPUT_TOL
    correct = lambda acc: round(acc * len(y))  # noqa: E731  (Keras reports accuracy as a float32)
    assert correct(keras_back_acc) == correct(metrics["test_acc"])
    assert abs(correct(lightning_acc) - correct(metrics["test_acc"])) <= 1
    assert metrics["test_acc"] > 0.9
    card = json.loads(convert.card_path(back).read_text())
    assert card["model"] == "back.keras" and card["dataset"] == "mnist"


def test_test_time_views_travel_with_a_keras_model_and_prediction_uses_them(tmp_path):
    """A Keras model card's flip_tta and shift_tta: convert carries them into the Lightning module it writes, and
    keras_ref.predict scores an image as the mean over the image and its mirror, as the model was tested."""
    from keras_ref.predict import probabilities
    from keras_ref.train import eval_logits

    path = random_keras_file(tmp_path)
    card = {"task": "classifier", "model": path.name, "mean": [0.1307], "std": [0.3081], "shift_tta": 0, "flip_tta": True}
    convert.card_path(path).write_text(json.dumps(card))
    assert convert.keras_tta(path) == (0, True)
    assert convert.keras_tta(tmp_path / "elsewhere.keras") == (0, False)  # no card: plain images
    model = keras.saving.load_model(path)
    arrays = np.random.default_rng(0).integers(0, 256, (3, 1, 28, 28), dtype=np.uint8)
    x = ((arrays / 255.0 - 0.1307) / 0.3081).astype(np.float32).transpose(0, 2, 3, 1)
    logits = (eval_logits(model, x) + eval_logits(model, np.ascontiguousarray(x[:, :, ::-1]))) / 2
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities(model, card, arrays), expected, atol=1e-6)
    assert not np.allclose(probabilities(model, {**card, "flip_tta": False}, arrays), expected, atol=1e-6)
