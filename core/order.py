"""The order of the training images and the seed of each epoch, as functions of (run seed, epoch) alone.

Both frameworks draw from these (Lightning's EpochShuffle and SeedEachEpoch, Keras' EpochBatches and
SeedEachEpoch): a run resumed from the end of an epoch trains exactly as the uninterrupted run would, and a
Lightning run and its Keras twin with one seed see the same images in the same order (a paired comparison).
Only torch is imported here."""

from __future__ import annotations

import torch

EPOCH_STRIDE = 1_000_003  # a prime: (seed, epoch) pairs of nearby seeds and epochs never share an epoch seed


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch`` of a run seeded ``seed`` (0 <= value < 2**63)."""
    return (seed + EPOCH_STRIDE * epoch) % 2**63


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """A permutation of range(n): the order in which epoch ``epoch`` visits the training images."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(epoch_seed(seed, epoch)))


FLIP_STREAM = 2**62 + 1  # apart from every epoch seed of nearby runs: the mirrored half is not tied to an epoch's order


def mirrored(n: int, seed: int, epoch: int) -> torch.Tensor:
    """Which training images epoch ``epoch`` shows mirrored, under airbench's *alternating flip*: a random half,
    fixed by the run's seed, in even epochs, and the other half in odd ones, so that every image is seen both ways in
    any two consecutive epochs (random flips leave a quarter of the images unmirrored, or mirrored, in both)."""
    half = torch.rand(n, generator=torch.Generator().manual_seed((seed + FLIP_STREAM) % 2**63)) < 0.5
    return half ^ bool(epoch % 2)
