import os
from pathlib import Path

# Tests read the staged copy beside the checkout unless told otherwise; it is read-only, so extracted
# files go to a cache of the test session's own.
_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("LIGHTNING_IMPL_DATA", str(_ROOT.parent / "shared" / "data"))
os.environ.setdefault("KERAS_BACKEND", "torch")


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_classifier_run(tmp_path_factory) -> Path:
    """A specified CNN trained on 200 MNIST batches (~97 % test accuracy): a run folder with checkpoints."""
    from lightning_impl.train import main

    root = tmp_path_factory.mktemp("classifier_runs")
    main(["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "200", "--trainer.limit_val_batches", "2",
          "--trainer.limit_test_batches", "1", "--trainer.enable_progress_bar", "false",
          "--trainer.enable_model_summary", "false", "--trainer.logger.init_args.save_dir", str(root)])
    return root / "mnist_specified_cnn" / "version_0"


@pytest.fixture(scope="session")
def tiny_denoiser_run(tmp_path_factory) -> Path:
    """The reference denoiser trained for one epoch on 1,024 Fashion-MNIST images."""
    from unittest import mock

    from lightning_impl.train_denoiser import main

    root = tmp_path_factory.mktemp("denoiser_runs")
    with mock.patch("sys.argv", ["train_denoiser"]):  # pytest's own arguments are not the CLI's
        main(["--config", "configs/denoise_reference.yaml", "--trainer.max_epochs", "1", "--data.train_limit", "1024",
              "--data.val_limit", "200", "--data.test_limit", "200", "--trainer.enable_progress_bar", "false",
              "--trainer.enable_model_summary", "false", "--trainer.logger.init_args.save_dir", str(root)])
    return root / "denoise_reference" / "version_0"
