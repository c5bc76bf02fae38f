"""The tasks' training figures (lightning_impl.tasks.train_logging): the step loss logged exactly on the steps the
logger writes, the epoch loss the batch-size-weighted mean of every step's loss, the accuracy once per epoch."""

import csv

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from lightning_impl.data.datamodules import MNISTDataModule
from lightning_impl.tasks.classifier import ImageClassifier


class StepLosses(L.Callback):
    def __init__(self) -> None:
        self.losses, self.sizes = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))
        self.sizes.append(len(batch[1]))


@pytest.mark.filterwarnings("ignore")
def test_step_and_epoch_losses_are_what_the_steps_computed(tmp_path):
    torch.manual_seed(0)
    dm = MNISTDataModule(batch_size=50, eval_batch_size=500, download=False)
    model = ImageClassifier(schedule="constant")
    steps = StepLosses()
    trainer = L.Trainer(max_epochs=2, limit_train_batches=7, limit_val_batches=1, log_every_n_steps=3,
                        logger=CSVLogger(tmp_path), callbacks=[steps], enable_progress_bar=False,
                        enable_checkpointing=False, enable_model_summary=False, accelerator="cpu", devices=1)
    trainer.fit(model, datamodule=dm)
    rows = list(csv.DictReader(open(trainer.logger.log_dir + "/metrics.csv")))
    logged = [(int(r["step"]), float(r["train_loss_step"])) for r in rows if r.get("train_loss_step")]
    # The logger writes on global steps 2, 5, 8, 11 (every third): each row holds that very step's loss.
    assert [s for s, _ in logged] == [2, 5, 8, 11]
    assert [v for _, v in logged] == pytest.approx([steps.losses[s] for s, _ in logged], rel=1e-6)
    epochs = [r for r in rows if r.get("train_loss_epoch")]
    assert len(epochs) == 2 and all(r.get("train_acc") for r in epochs)
    for epoch, row in enumerate(epochs):
        losses, sizes = torch.tensor(steps.losses[7 * epoch: 7 * epoch + 7]), torch.tensor(steps.sizes[7 * epoch: 7 * epoch + 7])
        assert float(row["train_loss_epoch"]) == pytest.approx(float((losses * sizes).sum() / sizes.sum()), rel=1e-5)
    # The progress bar has a step loss from the epoch's first step on.
    assert "train_loss_step" in trainer.progress_bar_metrics
