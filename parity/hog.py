"""HOG features as a scikit-learn transformer, with optional deskewing, for the HOG + SVM baseline.

    HOGTransformer(pixels_per_cell=(4, 7), deskew=True).fit_transform(images)  # (N, H, W) -> (N, features)

The transformer is stateless (``fit`` learns nothing), so it can sit first in a ``Pipeline`` and have its
parameters searched by ``GridSearchCV`` like any other step. Extraction is spread over cores with joblib.
"""

from __future__ import annotations

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from scipy import ndimage
from sklearn.base import BaseEstimator, TransformerMixin
from skimage.feature import hog
from skimage.measure import moments_central


def deskew(image: np.ndarray) -> np.ndarray:
    """Undo the slant of a stroke: shear rows so that the image's second-order moment mu11 becomes zero.

    Handwriting slant is close to a horizontal shear (x' = x + s * (y - cy)), so shearing back by
    s = mu11 / mu02 makes the stroke upright without changing its height; the centre of mass is moved to
    the image centre at the same time (LeCun et al.'s "deskewing" preprocessing). Returns float64 in the
    input's value range; blank images are returned unchanged.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"deskew expects one 2-D image, got shape {image.shape}")
    mass = image.sum()
    if mass <= 0:
        return image
    rows, cols = np.indices(image.shape)
    centre = np.array([(rows * image).sum(), (cols * image).sum()]) / mass
    mu = moments_central(image, center=tuple(centre), order=2)  # mu[p, q]: p along rows, q along columns
    if mu[2, 0] <= 0:
        return image
    skew = mu[1, 1] / mu[2, 0]  # column drift per row
    # affine_transform maps each output coordinate o to the input coordinate M @ o + offset;
    # output centre -> centre of mass, and each row r takes its column from c + skew * (r - centre_r).
    matrix = np.array([[1.0, 0.0], [skew, 1.0]])
    offset = centre - matrix @ ((np.array(image.shape) - 1) / 2.0)
    return ndimage.affine_transform(image, matrix, offset=offset, order=1, mode="constant", cval=0.0)


def _hog_batch(
    images: np.ndarray, deskewed: bool, orientations: int, cell_sizes: tuple[int, ...],
    cells_per_block: int, block_norm: str,
) -> np.ndarray:
    out = []
    for image in images:
        image = deskew(image) if deskewed else image.astype(np.float64)
        out.append(np.concatenate([
            hog(image, orientations=orientations, pixels_per_cell=(c, c),
                cells_per_block=(cells_per_block, cells_per_block), block_norm=block_norm, feature_vector=True)
            for c in cell_sizes
        ]))
    return np.asarray(out, dtype=np.float32)


class HOGTransformer(TransformerMixin, BaseEstimator):
    """Histogram-of-oriented-gradients features of grey images, at one or several cell sizes, concatenated.

    Args:
        orientations: histogram bins over 0-180 degrees.
        pixels_per_cell: side of the square cells, one int per scale; the HOG of each scale is computed
            on the whole image and the vectors are concatenated (fine cells see stroke detail, coarse cells
            see the digit's layout).
        cells_per_block: side of the square blocks (in cells) over which histograms are normalised.
        block_norm: skimage's block normalisation ('L1', 'L1-sqrt', 'L2', 'L2-Hys').
        deskew: straighten each image by its moments before HOG (see ``deskew``).
        n_jobs: joblib workers for extraction (-1: all cores); images are split into one chunk per worker.

    Input: uint8 or float images shaped (N, H, W) or (N, 1, H, W) (a torch tensor works too).
    """

    def __init__(
        self,
        orientations: int = 9,
        pixels_per_cell: tuple[int, ...] = (4,),
        cells_per_block: int = 2,
        block_norm: str = "L2-Hys",
        deskew: bool = False,
        n_jobs: int | None = None,
    ) -> None:
        self.orientations = orientations
        self.pixels_per_cell = pixels_per_cell
        self.cells_per_block = cells_per_block
        self.block_norm = block_norm
        self.deskew = deskew
        self.n_jobs = n_jobs

    def _images(self, X) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim == 4 and X.shape[1] == 1:
            X = X[:, 0]
        if X.ndim != 3:
            raise ValueError(f"expected grey images shaped (N, H, W) or (N, 1, H, W), got {X.shape}")
        return X

    def _cell_sizes(self) -> tuple[int, ...]:
        sizes = (self.pixels_per_cell,) if np.isscalar(self.pixels_per_cell) else tuple(self.pixels_per_cell)
        if not sizes or any(int(c) < 1 for c in sizes):
            raise ValueError(f"pixels_per_cell must be positive ints, got {self.pixels_per_cell!r}")
        return tuple(int(c) for c in sizes)

    def fit(self, X, y=None) -> "HOGTransformer":
        X = self._images(X)
        for c in self._cell_sizes():
            if min(X.shape[1:]) < c * self.cells_per_block:
                raise ValueError(f"a {c}-pixel cell with {self.cells_per_block}-cell blocks does not fit {X.shape[1:]}")
        self.image_shape_ = X.shape[1:]
        self.n_features_out_ = self.transform(X[:1]).shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        X = self._images(X)
        if hasattr(self, "image_shape_") and X.shape[1:] != self.image_shape_:
            raise ValueError(f"fitted on images of shape {self.image_shape_}, got {X.shape[1:]}")
        workers = effective_n_jobs(self.n_jobs) if len(X) > 1000 else 1
        chunks = np.array_split(X, workers)
        args = (self.deskew, self.orientations, self._cell_sizes(), self.cells_per_block, self.block_norm)
        parts = Parallel(n_jobs=workers)(delayed(_hog_batch)(chunk, *args) for chunk in chunks)
        return np.concatenate(parts)
