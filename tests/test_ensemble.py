"""`python -m lightning_impl.ensemble`: members rebuilt from their run folders score as they did in training."""

import json
import math

import pytest

from lightning_impl import ensemble
from core.runs import UsageError
from lightning_impl.train import main as train_main

pytestmark = pytest.mark.slow  # trains models


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two short MNIST runs of the default recipe (different seeds), tested on the full test set."""
    root = tmp_path_factory.mktemp("runs")
    out = []
    for seed in (0, 1):
        metrics = train_main([
            "--seed_everything", str(seed), "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "30",
            "--trainer.limit_val_batches", "2", "--trainer.logger.init_args.save_dir", str(root),
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        ])
        out.append((root / "mnist_specified_cnn" / f"version_{seed}", metrics))
    return out


def test_members_score_as_in_training_and_an_ensemble_of_one_model_is_that_model(runs):
    (a, metrics_a), (b, metrics_b) = runs
    assert metrics_a["test_acc"] != metrics_b["test_acc"]  # two different models, or the test proves little
    result = ensemble.evaluate([a, b])
    assert [m["test_acc"] for m in result["members"]] == pytest.approx([metrics_a["test_acc"], metrics_b["test_acc"]], abs=1e-4)
    assert result["test_images"] == 10_000
    assert result["member_test_acc_mean"] == pytest.approx((metrics_a["test_acc"] + metrics_b["test_acc"]) / 2, abs=1e-4)

    twice = ensemble.evaluate([a, a])
    assert twice["ensemble_test_acc"] == pytest.approx(twice["members"][0]["test_acc"])
    assert twice["member_test_acc_std"] == 0.0
    alone = ensemble.evaluate([a])
    assert alone["ensemble_test_acc"] == alone["members"][0]["test_acc"] and math.isnan(alone["member_test_acc_std"])


def test_a_ladder_step_is_its_seeds_and_bad_input_is_refused(runs, tmp_path, capsys):
    (a, _), (b, _) = runs
    best = {run: next((run / "checkpoints").glob("best-*.ckpt")) for run in (a, b)}
    (tmp_path / "results.json").write_text(json.dumps([
        {"step": "05_augmentation", "seed": 1, "best_checkpoint": str(best[b])},
        {"step": "05_augmentation", "seed": 0, "best_checkpoint": str(best[a])},
        {"step": "04_depth_width", "seed": 0, "best_checkpoint": "elsewhere/checkpoints/best.ckpt"},
    ]))
    assert ensemble.ladder_runs(tmp_path, "05_augmentation") == [a, b]
    with pytest.raises(UsageError, match="no finished run"):
        ensemble.ladder_runs(tmp_path, "06_schedule")
    with pytest.raises(UsageError, match="not a training run"):
        ensemble.evaluate([tmp_path])
    with pytest.raises(SystemExit):
        ensemble.main(["--ladder", str(tmp_path)])
    assert "--ladder and --step go together" in capsys.readouterr().err
