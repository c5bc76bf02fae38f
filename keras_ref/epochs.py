"""Every epoch of a Keras run fixed by (run seed, epoch) alone, as in lightning_impl: the order of the training
images (core.order, the very permutation Lightning's EpochShuffle draws) and whatever the epoch
draws at random (dropout, augmentation, training noise). So a run resumed from the end of an epoch trains
exactly as the uninterrupted run would, and a Keras run sees the images in the order its Lightning twin does.

Keras' own ``fit(x, y, shuffle=True)`` draws each order from the global generator, and its layers' seed
generators run on from where the last epoch left them: neither is in a checkpoint.
"""

from __future__ import annotations

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras
import numpy as np

from core.order import epoch_order, epoch_seed


class EpochBatches(keras.utils.PyDataset):
    """(x, y) batches in Lightning's order for the epoch last given to ``set_epoch`` (SeedEachEpoch calls it
    before every epoch). One worker, no multiprocessing: batches are made in order, when asked for."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> None:
        super().__init__()
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.order = epoch_order(len(self.x), self.seed, epoch).numpy()

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i: int):
        take = self.order[i * self.batch_size : (i + 1) * self.batch_size]
        return self.x[take], self.y[take]


class SeedEachEpoch(keras.callbacks.Callback):
    """At the start of every epoch: the feeders' order for this epoch, Python's, numpy's and the backend's global
    generators reseeded from (seed, epoch), and every seed generator of the model (dropout, augmentation layers)
    set to a state of (its first state, epoch) -- what they draw in an epoch depends on the epoch alone."""

    def __init__(self, seed: int, feeders=()) -> None:
        super().__init__()
        self.seed, self.feeders, self.first = seed, list(feeders), None

    def _generators(self):
        return [v for v in self.model.variables if v.path.endswith("seed_generator_state")]

    def on_train_begin(self, logs=None):
        # Taken before any epoch has drawn: a freshly built model of the same seed starts from the same states.
        self.first = [np.asarray(keras.ops.convert_to_numpy(v)) for v in self._generators()]

    def on_epoch_begin(self, epoch, logs=None):
        for feeder in self.feeders:
            feeder.set_epoch(epoch)
        keras.utils.set_random_seed(epoch_seed(self.seed, epoch) % 2**32)
        for variable, first in zip(self._generators(), self.first):
            state = first.astype(np.int64)
            state[0] = (state[0] + epoch_seed(0, epoch)) % 2**31
            state[1] = 0
            variable.assign(state.astype(first.dtype))
