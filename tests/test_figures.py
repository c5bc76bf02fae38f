"""Every run draws itself: core.plots writes valid PNGs, epoch_table reads both frameworks' metrics.csv,
and tiny Lightning, Keras and TensorBoard-logged runs leave their figures/ in the run folder."""

from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from matplotlib import image as mpimg

from core import plots

PNG = b"\x89PNG\r\n\x1a\n"
TINY_LIGHTNING = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "5", "--trainer.limit_val_batches", "1",
                  "--trainer.limit_test_batches", "1", "--trainer.enable_progress_bar", "false",
                  "--trainer.enable_model_summary", "false"]


def assert_png(path: Path, min_side: int = 200) -> np.ndarray:
    path = Path(path)
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG, path
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) >= min_side and max(pixels.shape[:2]) < 5000, pixels.shape
    assert pixels.std() > 0.01, f"{path} is blank"
    return pixels


LIGHTNING_CSV = """\
epoch,epoch_time_s,step,test_acc,test_loss,train_acc,train_images_per_s,train_loss_epoch,train_loss_step,val_acc,val_loss
0,,49,,,,,,2.10,,
0,,84,,,,,,,0.90,0.35
0,12.5,84,,,0.80,5000.0,0.62,,,
1,,99,,,,,,0.30,,
1,,169,,,,,,,0.95,0.20
1,11.9,169,,,0.93,5200.0,0.25,,,
2,,170,0.94,0.21,,,,,,
"""

KERAS_CSV = """\
epoch,acc,learning_rate,loss,val_acc,val_loss
0,0.81,0.005,0.61,0.91,0.33
1,0.94,0.004,0.24,0.95,0.19
"""


def test_epoch_table_reads_lightning_metrics_csv(tmp_path):
    (tmp_path / "metrics.csv").write_text(LIGHTNING_CSV)
    table = plots.epoch_table(tmp_path / "metrics.csv")
    assert table == [
        {"epoch": 0, "train_loss": 0.62, "train_acc": 0.80, "val_loss": 0.35, "val_acc": 0.90},
        {"epoch": 1, "train_loss": 0.25, "train_acc": 0.93, "val_loss": 0.20, "val_acc": 0.95},
    ]  # step values, timings and the test row left out


def test_epoch_table_reads_keras_metrics_csv(tmp_path):
    (tmp_path / "metrics.csv").write_text(KERAS_CSV)
    assert plots.epoch_table(tmp_path / "metrics.csv") == [
        {"epoch": 0, "train_acc": 0.81, "train_loss": 0.61, "val_acc": 0.91, "val_loss": 0.33},
        {"epoch": 1, "train_acc": 0.94, "train_loss": 0.24, "val_acc": 0.95, "val_loss": 0.19},
    ]


def test_epoch_table_reads_a_denoisers_psnr(tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch,loss,val_loss,val_psnr,val_ssim\n0,0.02,0.015,21.5,0.7\n")
    assert plots.epoch_table(tmp_path / "metrics.csv") == [
        {"epoch": 0, "train_loss": 0.02, "val_loss": 0.015, "val_psnr": 21.5}]


def test_learning_curves_one_run_and_two_frameworks_on_one_figure(tmp_path):
    (tmp_path / "l.csv").write_text(LIGHTNING_CSV)
    (tmp_path / "k.csv").write_text(KERAS_CSV)
    lightning, keras = plots.epoch_table(tmp_path / "l.csv"), plots.epoch_table(tmp_path / "k.csv")
    one = assert_png(plots.learning_curves(lightning, tmp_path / "one.png", "one run"))
    both = assert_png(plots.learning_curves({"Lightning": lightning, "Keras": keras}, tmp_path / "both.png", "both"))
    assert one.shape[1] > 1.8 * one.shape[0] and both.shape == one.shape  # loss and accuracy side by side
    loss_only = assert_png(plots.learning_curves([{"epoch": 0, "train_loss": 1.0}, {"epoch": 1, "train_loss": 0.5}],
                                                 tmp_path / "loss.png"))
    assert loss_only.shape[1] < one.shape[1]  # no accuracy: one panel


def test_confusion_matrix(tmp_path):
    rng = np.random.default_rng(0)
    true = rng.integers(0, 10, 500)
    pred = np.where(rng.random(500) < 0.8, true, rng.integers(0, 10, 500))
    cm = plots.confusion_counts(true, pred, 10)
    assert cm.sum() == 500 and np.trace(cm) == (true == pred).sum() and cm[true[0], pred[0]] >= 1
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    assert_png(plots.confusion_matrix(cm, names, tmp_path / "cm.png", "fashion"))


@pytest.mark.parametrize("shape", [(30, 28, 28), (30, 32, 32, 3)])
def test_misclassified_gallery(tmp_path, shape):
    rng = np.random.default_rng(1)
    true, pred, conf = rng.integers(0, 10, 30), rng.integers(0, 10, 30), rng.random(30)
    worst = plots.most_confidently_wrong(true, pred, conf, limit=24)
    assert len(worst) <= 24 and (true[worst] != pred[worst]).all() and (np.diff(conf[worst]) <= 0).all()
    images = rng.random(shape)
    assert_png(plots.misclassified_gallery(images[worst], true[worst], pred[worst], conf[worst], [str(i) for i in range(10)],
                                           tmp_path / "wrong.png", "gallery"))
    assert_png(plots.misclassified_gallery(images[:0], [], [], [], ["a"], tmp_path / "none.png"), min_side=100)


def test_denoise_grid(tmp_path):
    rng = np.random.default_rng(2)
    clean = rng.random((8, 28, 28))
    noisy = np.clip(clean + rng.normal(0, 0.3, clean.shape), 0, 1)
    pixels = assert_png(plots.denoise_grid(clean, noisy, (clean + noisy) / 2, tmp_path / "grid.png", "grid"))
    assert pixels.shape[1] > 2 * pixels.shape[0]  # a few images in each of three rows


def assert_classifier_figures(run_dir: Path) -> None:
    for name in ("learning_curves", "confusion_matrix", "misclassified"):
        assert_png(run_dir / "figures" / f"{name}.png")


@pytest.mark.slow
def test_a_lightning_classifier_run_draws_its_figures(tmp_path):
    from lightning_impl.train import main

    main([*TINY_LIGHTNING, "--trainer.logger.init_args.save_dir", str(tmp_path)])
    assert_classifier_figures(tmp_path / "mnist_specified_cnn" / "version_0")
    main([*TINY_LIGHTNING, "--trainer.logger.init_args.save_dir", str(tmp_path), "--figures.enabled", "false"])
    assert not (tmp_path / "mnist_specified_cnn" / "version_1" / "figures").exists()


@pytest.mark.slow
def test_a_lightning_denoiser_run_draws_its_figures(tmp_path):
    from lightning_impl.train_denoiser import main

    with mock.patch("sys.argv", ["train_denoiser"]):
        main(["--trainer.max_epochs", "1", "--data.train_limit", "256", "--data.val_limit", "64", "--data.test_limit", "64",
              "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
              "--trainer.logger.init_args.save_dir", str(tmp_path)])
    run_dir = tmp_path / "denoise_reference" / "version_0"
    assert_png(run_dir / "figures" / "denoise_grid.png")
    assert_png(run_dir / "figures" / "learning_curves.png")


@pytest.mark.slow
def test_keras_runs_draw_their_figures(tmp_path):
    from keras_ref import train, train_denoiser

    metrics = train.main(["--epochs", "1", "--limit-train", "256", "--runs-dir", str(tmp_path), "--quiet"])
    assert_classifier_figures(Path(metrics["run_dir"]))
    metrics = train_denoiser.main(["--epochs", "1", "--limit-train", "256", "--limit-val", "64", "--limit-test", "64",
                                   "--runs-dir", str(tmp_path), "--quiet"])
    assert_png(Path(metrics["run_dir"]) / "figures" / "denoise_grid.png")
    assert_png(Path(metrics["run_dir"]) / "figures" / "learning_curves.png")


@pytest.mark.slow
def test_a_run_logged_to_tensorboard_too_keeps_its_run_folder(tmp_path):
    pytest.importorskip("tensorboard")
    from lightning_impl.train import main

    main([*TINY_LIGHTNING, "--trainer.logger.init_args.save_dir", str(tmp_path),
          "--trainer.logger+=lightning.pytorch.loggers.TensorBoardLogger", "--trainer.logger.save_dir", str(tmp_path / "tb")])
    run_dir = tmp_path / "mnist_specified_cnn" / "version_0"
    for name in ("metrics.csv", "metrics.json", "config.yaml", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name
    assert [row["epoch"] for row in plots.epoch_table(run_dir / "metrics.csv")] == [0, 1]
    assert_classifier_figures(run_dir)
    assert list((tmp_path / "tb").glob("lightning_logs/version_0/events.out.tfevents.*"))
    # Resumed, the CSV logger writes into the same folder again (a logger list is not reached by dotted flags).
    main(["--resume", str(run_dir), "--trainer.max_epochs", "3"])
    assert [row["epoch"] for row in plots.epoch_table(run_dir / "metrics.csv")] == [0, 1, 2]
    assert not (tmp_path / "mnist_specified_cnn" / "version_1").exists()
