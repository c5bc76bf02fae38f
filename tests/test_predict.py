"""Prediction on image files: self-contained checkpoints, real test images as PNG/JPEG, inversion, bad inputs,
the Keras twin through the same preprocessing, and denoisers writing PNGs."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core import preprocess
from core.datasets import ensure_available, load_split
from core.preprocess import INVERTED_NOTE, ImageInputError, prepare

N_IMAGES = 8  # the first test images; the tiny model gets all of them right (checked: fixed seed, CPU)


@pytest.fixture(scope="module")
def mnist_test():
    images, labels = load_split("mnist", ensure_available("mnist"), train=False)
    return images[:, 0].numpy(), labels.numpy()


@pytest.fixture(scope="module")
def image_files(mnist_test, tmp_path_factory) -> tuple[list[Path], list[str]]:
    """Real MNIST test images as files: as they are, one inverted, one inverted, enlarged, RGB and JPEG."""
    images, labels = mnist_test
    folder = tmp_path_factory.mktemp("images")
    files, expected = [], []
    for i in range(N_IMAGES):
        files.append(folder / f"test{i}.png")
        Image.fromarray(images[i]).save(files[-1])
        expected.append(str(labels[i]))
    files.append(folder / "inverted.png")
    Image.fromarray(255 - images[0]).save(files[-1])
    files.append(folder / "drawn.jpg")  # like a scan of a digit drawn on paper: big, dark on light, RGB
    Image.fromarray(255 - images[1]).resize((280, 200), Image.Resampling.BICUBIC).convert("RGB").save(files[-1], quality=90)
    expected += [str(labels[0]), str(labels[1])]
    return files, expected


def run_module(module: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=Path(__file__).resolve().parents[1])


# ----------------------------------------------------------------------------- preprocessing (no training)


def test_inversion_rule_on_real_test_sets():
    for name, missed in (("mnist", 0), ("fashion_mnist", 3)):  # of 10,000 inverted images
        images, _ = load_split(name, ensure_available(name), train=False)
        images = images[:, 0].numpy()
        assert not any(preprocess.is_dark_on_light(x) for x in images), name
        assert sum(not preprocess.is_dark_on_light(255 - x) for x in images) == missed, name


def test_an_image_of_the_model_size_is_taken_as_it_is(mnist_test, tmp_path):
    images, _ = mnist_test
    Image.fromarray(images[3]).save(tmp_path / "a.png")
    Image.fromarray(255 - images[3]).save(tmp_path / "b.png")
    Image.fromarray(np.stack([images[3]] * 3, axis=-1)).save(tmp_path / "grey_as_rgb.png")  # R = G = B: not colour
    for name, inverted in (("a.png", False), ("b.png", True), ("grey_as_rgb.png", False)):
        prepared = prepare(tmp_path / name, "mnist", (1, 28, 28))
        assert prepared.inverted == inverted and prepared.array.dtype == np.uint8
        np.testing.assert_array_equal(prepared.array[0], images[3])
        assert (INVERTED_NOTE in prepared.notes) == inverted


def test_large_pictures_are_framed_like_the_dataset(mnist_test, tmp_path):
    images, _ = mnist_test
    Image.fromarray(255 - images[0]).resize((300, 120)).save(tmp_path / "wide.png")
    prepared = prepare(tmp_path / "wide.png", "mnist", (1, 28, 28))
    assert prepared.array.shape == (1, 28, 28) and prepared.inverted
    x = prepared.array[0]
    rows, cols = np.nonzero(x)
    assert max(np.ptp(rows), np.ptp(cols)) + 1 in (19, 20, 21)  # MNIST's recipe: the digit fitted into a 20x20 box
    Image.new("RGB", (40, 50), (10, 200, 30)).save(tmp_path / "green.png")
    assert prepare(tmp_path / "green.png", "cifar10", (3, 32, 32)).array.shape == (3, 32, 32)
    rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))  # black strokes on a transparent canvas: composited on white
    rgba.paste((0, 0, 0, 255), (28, 10, 36, 54))
    rgba.save(tmp_path / "strokes.png")
    assert prepare(tmp_path / "strokes.png", "mnist", (1, 28, 28)).inverted


def test_bad_files_get_one_line(tmp_path):
    (tmp_path / "text.png").write_text("not a picture")
    Image.new("RGB", (60, 40), (200, 30, 30)).save(tmp_path / "red.jpg")
    png = (tmp_path / "cut.png")
    Image.new("L", (200, 200), 128).save(png)
    png.write_bytes(png.read_bytes()[:100])
    cases = {"text.png": "not an image", "missing.png": "no such file", "red.jpg": "--grey", "cut.png": "unreadable"}
    for name, words in cases.items():
        with pytest.raises(ImageInputError, match=words) as err:
            prepare(tmp_path / name, "mnist", (1, 28, 28))
        assert "\n" not in str(err.value) and name in str(err.value)
    assert prepare(tmp_path / "red.jpg", "mnist", (1, 28, 28), grey=True).array.shape == (1, 28, 28)


# ----------------------------------------------------------------------------- Lightning


@pytest.mark.slow
def test_checkpoint_carries_what_prediction_needs(tiny_classifier_run):
    checkpoint = torch.load(next((tiny_classifier_run / "checkpoints").glob("best*.ckpt")), weights_only=True)
    card = checkpoint["model_card"]
    assert card["task"] == "classifier" and card["dataset"] == "mnist" and card["input_shape"] == [1, 28, 28]
    assert card["classes"] == [str(i) for i in range(10)]
    assert card["net"] == {"class_path": "lightning_impl.models.SpecifiedCNN", "init_args": {"in_channels": 1, "num_classes": 10}}
    # The training split's statistics (MNIST's whole training set: 0.1307, 0.3081).
    assert card["mean"][0] == pytest.approx(0.1307, abs=1e-3) and card["std"][0] == pytest.approx(0.3081, abs=1e-3)


@pytest.mark.slow
def test_predicts_real_test_images_with_no_data_folder(tiny_classifier_run, image_files, tmp_path, monkeypatch, capsys):
    from lightning_impl import predict
    from core import datasets

    files, expected = image_files
    empty = tmp_path / "no_data"
    empty.mkdir()
    monkeypatch.setenv("LIGHTNING_IMPL_DATA", str(empty))
    monkeypatch.setenv("LIGHTNING_IMPL_CACHE", str(empty))

    def no_data(*args, **kwargs):
        raise AssertionError("prediction touched the dataset")

    monkeypatch.setattr(datasets, "load_split", no_data)
    monkeypatch.setattr(datasets, "ensure_available", no_data)
    rows = predict.main([str(tiny_classifier_run), *map(str, files), "--json", str(tmp_path / "p.json"),
                         "--csv", str(tmp_path / "p.csv")])
    assert [row["label"] for row in rows] == expected
    assert [row["inverted"] for row in rows] == [False] * N_IMAGES + [True, True]
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(files) and lines[-2].endswith(f"[{INVERTED_NOTE}]")
    assert lines[0].startswith(f"{files[0]}: {expected[0]} (") and lines[0].count("%") == 3  # top-3
    assert json.loads((tmp_path / "p.json").read_text()) == rows
    assert (tmp_path / "p.csv").read_text().splitlines()[0].startswith("file,label,probability,top1,p1")
    # The probabilities are the LightningModule's own on the dataset's tensors.
    assert all(0.0 <= row["p3"] <= row["p2"] <= row["p1"] <= 1.0 for row in rows)


@pytest.mark.slow
def test_command_line_errors_are_one_line(tiny_classifier_run, image_files, tmp_path):
    files, _ = image_files
    (tmp_path / "text.png").write_text("not a picture")
    Image.new("RGB", (50, 50), (200, 30, 30)).save(tmp_path / "red.png")
    torch.save({"state_dict": {}}, tmp_path / "old.ckpt")
    Image.new("1", (8000, 8000)).save(tmp_path / "bomb.png")  # a few kB claiming 64 million pixels
    cases = [
        ((tiny_classifier_run, tmp_path / "bomb.png"), "8000 x 8000 pixels"),
        ((tiny_classifier_run, tmp_path / "text.png"), "not an image"),
        ((tiny_classifier_run, tmp_path / "nothing.png"), "no such file"),
        ((tiny_classifier_run, tmp_path / "red.png"), "pass --grey"),
        ((tmp_path / "no_run", files[0]), "no such checkpoint or run folder"),
        ((tmp_path / "old.ckpt", files[0]), "no model card"),
    ]
    for args, words in cases:
        result = run_module("lightning_impl.predict", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and words in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
    ok = run_module("lightning_impl.predict", tiny_classifier_run, tmp_path / "red.png", "--grey", "--quiet")
    assert ok.returncode == 0 and ok.stdout == ""


@pytest.mark.slow
def test_denoiser_writes_a_png(tiny_denoiser_run, tmp_path):
    from lightning_impl import predict
    from core.noise import NOISE_SEEDS, fixed_noisy_copy, to_unit

    images, _ = load_split("fashion_mnist", ensure_available("fashion_mnist"), train=False)
    noisy = fixed_noisy_copy(to_unit(images[:2]), 0.3, NOISE_SEEDS["test"]).numpy()
    preprocess.save_png(noisy[0], tmp_path / "noisy.png")
    preprocess.save_png(1.0 - noisy[1], tmp_path / "noisy_inverted.png")
    rows = predict.main([str(tiny_denoiser_run), str(tmp_path / "noisy.png"), "--out", str(tmp_path / "out.png")])
    out = np.asarray(Image.open(tmp_path / "out.png"))
    assert out.shape == (28, 28) and not rows[0]["inverted"]
    preprocess.save_png(noisy[1], tmp_path / "noisy_upright.png")
    rows = predict.main([str(tiny_denoiser_run), str(tmp_path / "noisy_inverted.png"), str(tmp_path / "noisy_upright.png"),
                         "--out-dir", str(tmp_path / "d"), "--quiet"])
    assert [row["inverted"] for row in rows] == [True, False]
    back = np.asarray(Image.open(tmp_path / "d" / "noisy_inverted_denoised.png")).astype(int)
    upright = np.asarray(Image.open(tmp_path / "d" / "noisy_upright_denoised.png")).astype(int)
    np.testing.assert_array_equal(back, 255 - upright)  # given back the way it came: dark on light


# ----------------------------------------------------------------------------- Keras twin


@pytest.mark.slow
def test_keras_twin_predicts_the_same_files(image_files, tmp_path):
    from keras_ref import predict as keras_predict
    from keras_ref.train import main as keras_train

    files, expected = image_files
    keras_train(["--epochs", "1", "--limit-train", "12800", "--quiet", "--runs-dir", str(tmp_path)])
    run = tmp_path / "mnist_specified_cnn_keras" / "version_0"
    card = json.loads((run / "model_card.json").read_text())
    assert card["mean"][0] == pytest.approx(0.1307, abs=1e-3) and card["input_shape"] == [1, 28, 28]
    rows = keras_predict.main([str(run), *map(str, files), "--quiet"])
    assert [row["label"] for row in rows] == expected
    assert [row["inverted"] for row in rows] == [False] * N_IMAGES + [True, True]
    result = run_module("keras_ref.predict", run, tmp_path / "missing.png")
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1


@pytest.mark.slow
def test_keras_denoiser_writes_a_png_given_back_as_it_came(tmp_path):
    """keras_ref.train_denoiser saves model.keras and its card; keras_ref.predict restores image files with it, as
    lightning_impl.predict does with a Lightning denoiser (an inverted picture is given back inverted)."""
    from keras_ref import predict as keras_predict
    from keras_ref import train_denoiser
    from core.noise import NOISE_SEEDS, fixed_noisy_copy, to_unit

    metrics = train_denoiser.main(["--epochs", "1", "--limit-train", "256", "--limit-val", "64", "--limit-test", "64",
                                   "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    run = Path(metrics["run_dir"])
    assert json.loads((run / "model_card.json").read_text())["task"] == "denoiser"
    images, _ = load_split("fashion_mnist", ensure_available("fashion_mnist"), train=False)
    noisy = fixed_noisy_copy(to_unit(images[:1]), 0.3, NOISE_SEEDS["test"]).numpy()
    preprocess.save_png(noisy[0], tmp_path / "upright.png")
    preprocess.save_png(1.0 - noisy[0], tmp_path / "inverted.png")
    rows = keras_predict.main([str(run), str(tmp_path / "upright.png"), str(tmp_path / "inverted.png"),
                               "--out-dir", str(tmp_path / "out"), "--quiet"])
    assert [row["inverted"] for row in rows] == [False, True]
    upright = np.asarray(Image.open(tmp_path / "out" / "upright_denoised.png")).astype(int)
    back = np.asarray(Image.open(tmp_path / "out" / "inverted_denoised.png")).astype(int)
    assert upright.shape == (28, 28)
    np.testing.assert_array_equal(back, 255 - upright)
    model, _ = keras_predict.load_run(run)  # the PNG is the saved model's restoration of the file's pixels
    pixels = np.asarray(Image.open(tmp_path / "upright.png"))[None, None]
    expected = np.rint(keras_predict.restored(model, pixels)[0, 0] * 255).astype(int)
    assert np.abs(upright - expected).max() <= 1


def test_keras_predict_loads_a_batch_norm_twin_and_scores_it_as_it_was_tested(image_files, tmp_path):
    """The improved recipe's twin holds the project's own BatchNorm layer: keras_ref.predict, in a fresh interpreter,
    registers it before loading model.keras; and it averages the shifted views the run was tested with
    (model.shift_tta, core.shift_views), as keras_ref.train's test scoring does."""
    from keras_ref import predict as keras_predict
    from keras_ref import recipes
    from keras_ref import train as keras_train
    from core.split import DatasetSplit

    recipe = recipes.classifier_recipe("configs/mnist_improved.yaml")
    assert recipe["shift_tta"] == 1
    dm = DatasetSplit("mnist", val_fraction=0.1, split_seed=0)
    dm.prepare()
    dm.setup()
    net, _ = keras_train.build(recipe, (28, 28, 1), 10, steps_per_epoch=1)
    keras_train.save_for_prediction(tmp_path, net, dm, recipe["shift_tta"])
    files, _ = image_files
    result = run_module("keras_ref.predict", tmp_path, files[0], "--json", tmp_path / "rows.json")
    assert result.returncode == 0, result.stderr[-2000:]
    model, card = keras_predict.load_run(tmp_path)
    assert card["shift_tta"] == 1
    pixels = np.stack([prepare(f, "mnist", (1, 28, 28)).array for f in files[:4]])
    x = ((pixels / 255.0 - card["mean"][0]) / card["std"][0]).astype(np.float32).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(keras_predict.probabilities(model, card, pixels),
                               preprocess.softmax(keras_train.eval_logits(model, x, 1)), atol=1e-6)
    assert not np.allclose(keras_predict.probabilities(model, {**card, "shift_tta": 0}, pixels),
                           keras_predict.probabilities(model, card, pixels), atol=1e-6)
