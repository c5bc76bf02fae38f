"""Every training epoch sees the images in a new order, under Lightning's own loop, and the order is a function of
(seed, epoch) alone."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn

from core.split import TensorBatches
from lightning_impl.data.datamodules import EpochShuffle, training_loader


class Recorder(L.LightningModule):
    """Remembers the indices of every epoch's training batches (the images are their own index)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.seen: dict[int, list[int]] = {}

    def training_step(self, batch, batch_idx):
        x, _ = batch
        self.seen.setdefault(self.current_epoch, []).extend(x.flatten().long().tolist())
        return (self.w * x.float().mean()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_lightning_steps_the_epoch_of_the_batch_order(tmp_path):
    n = 64
    data = TensorBatches(images=torch.arange(n).view(n, 1), labels=torch.zeros(n, dtype=torch.long))
    torch.manual_seed(3)
    loader = training_loader(data, batch_size=8, trainer=None)
    model = Recorder()
    trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(model, train_dataloaders=loader)
    orders = [model.seen[e] for e in range(3)]
    assert all(sorted(o) == list(range(n)) for o in orders)  # each epoch sees every image once
    assert orders[0] != orders[1] != orders[2] != orders[0]  # and in a new order
    for epoch, order in enumerate(orders):  # the order of (seed, epoch), as a resumed run recomputes it
        again = EpochShuffle(n, 8, seed=3)
        again.set_epoch(epoch)
        assert torch.cat(list(again)).tolist() == order


@pytest.mark.filterwarnings("ignore")
def test_the_cli_hands_the_run_seed_to_what_draws_from_it():
    """The seed is data: the CLI passes seed_everything to the DataModule's epoch order and to the per-epoch
    reseeding, so nothing reads it back from torch's global state (which anything may reseed in between)."""
    from lightning_impl.callbacks import SeedEachEpoch
    from lightning_impl.train import classifier_cli

    cli = classifier_cli(["--seed_everything", "7", "--trainer.logger", "false"])
    torch.manual_seed(123)  # global state moved on: the run's seed must not follow it
    assert cli.datamodule.seed == 7
    assert [c.seed for c in cli.trainer.callbacks if isinstance(c, SeedEachEpoch)] == [7]
