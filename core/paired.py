"""Paired comparisons of two classifiers on the same images: which images each one gets wrong, and McNemar's
exact test on the images only one of them gets right.

Two models scored on the same validation or test images are not independent samples: most images both get
right, some both get wrong, and only the images where they disagree say which is better. McNemar's test looks at
those alone (under "no difference" each is equally likely to favour either model), so it resolves a difference
that the error of one accuracy, or of two unpaired ones, would call noise. Every trainer records the images its
selected model gets wrong (``val_errors``, ``test_errors``: positions in the split's order) for this."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence


def wrong_positions(predicted: Sequence[int], labels: Sequence[int]) -> list[int]:
    """The positions (in the split's order) of the images whose predicted class is not the label."""
    if len(predicted) != len(labels):
        raise ValueError(f"{len(predicted)} predictions for {len(labels)} labels")
    return [i for i, (p, y) in enumerate(zip(predicted, labels)) if int(p) != int(y)]


@dataclass(frozen=True)
class Paired:
    """McNemar's exact test, pooled over pairs of runs: ``new_only`` images right only in the new model's runs,
    ``old_only`` right only in the old's; ``p`` two-sided (the binomial test of new_only among the discordant)."""

    new_only: int
    old_only: int
    p: float
    images: int  # image-runs compared: images × pairs

    @property
    def gain(self) -> int:
        """Images the new model gets right and the old one does not, minus the reverse."""
        return self.new_only - self.old_only

    @property
    def gain_share(self) -> float:
        return self.gain / self.images if self.images else float("nan")


def mcnemar(old_errors: Iterable[Iterable[int]], new_errors: Iterable[Iterable[int]], images: int) -> Paired:
    """Compare two models run in pairs (one pair per seed, each pair on the same ``images`` images): the lists of
    the positions each run gets wrong, pair by pair."""
    from scipy import stats

    new_only = old_only = pairs = 0
    for old, new in zip(old_errors, new_errors, strict=True):
        old, new = set(old), set(new)
        new_only += len(old - new)  # wrong before, right now
        old_only += len(new - old)
        pairs += 1
    if not pairs:
        raise ValueError("no pair of runs to compare")
    n = new_only + old_only
    p = 1.0 if n == 0 else float(stats.binomtest(new_only, n, 0.5).pvalue)
    return Paired(new_only, old_only, p, images * pairs)
