"""Turn an image file of any size and colour mode into an array shaped like a dataset's images.

Framework-neutral (numpy and PIL only): lightning_impl.predict and keras_ref.predict read files through
this one function, so the two frameworks see the same pixels. The result is uint8 (C, H, W), as the
datasets are held in memory (lightning_impl.data.datamodules), before the training split's normalisation.

What the training data looks like, and what is done to make a file look like it:
  * MNIST / Fashion-MNIST: greyscale, light object on a dark background. A dark-on-light picture (a digit
    drawn on paper) is inverted; the decision is taken from the border, where the background is.
    MNIST digits were fitted into a 20x20 box and centred by centre of mass in 28x28; Fashion-MNIST items
    were trimmed and their longest side scaled to 28. Both recipes are followed for files of another size.
  * CIFAR-10: colour photographs, 32x32: padded to a square with the border's colour, then resized.
A file that already has the model's size is taken as it is (after inversion): it is a dataset image.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.runs import write_text

INVERTED_NOTE = "inverted (dark object on light background)"
Invert = Literal["auto", "always", "never"]

# Mean spread between the R, G and B values of a pixel above which a picture counts as colour: a grey
# picture saved as RGB (or re-compressed as JPEG) keeps its channels within a few levels of each other.
COLOUR_SPREAD = 4.0


class ImageInputError(ValueError):
    """A file that cannot be turned into a model input; the message is one line, naming the file."""


@dataclass
class Prepared:
    path: str
    array: np.ndarray  # uint8 (C, H, W)
    inverted: bool
    notes: list[str] = field(default_factory=list)


MAX_PIXELS = 50_000_000  # a 50-megapixel photo; PIL itself only warns below ~179 million


def read_image(path: str | Path) -> Image.Image:
    path = Path(path)
    if not path.exists():
        raise ImageInputError(f"{path}: no such file")
    if path.is_dir():
        raise ImageInputError(f"{path}: is a folder, not an image file")
    try:
        image = Image.open(path)  # reads the header only
        width, height = image.size
        if width * height > MAX_PIXELS:  # a small file can claim a huge canvas (a decompression bomb)
            raise ImageInputError(f"{path}: {width} x {height} pixels, more than the {MAX_PIXELS:,} read here; "
                                  "scale it down first (the model sees 28 x 28 or 32 x 32)")
        image.load()  # decode now: a truncated file fails here, not later
    except UnidentifiedImageError:
        raise ImageInputError(f"{path}: not an image PIL can read (PNG or JPEG expected)") from None
    except Image.DecompressionBombError as err:
        raise ImageInputError(f"{path}: refused as a decompression bomb ({err})") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageInputError(f"{path}: unreadable image ({err})") from None
    return ImageOps.exif_transpose(image)  # phone photos store their rotation in EXIF


def _flatten_alpha(image: Image.Image) -> Image.Image:
    # Transparent pixels become white: drawing programs save black strokes on a transparent canvas.
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return image


def is_colour(image: Image.Image) -> bool:
    if image.mode in ("1", "L", "I", "I;16", "F"):
        return False
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    return float((rgb.max(axis=2) - rgb.min(axis=2)).mean()) > COLOUR_SPREAD


def border(array: np.ndarray) -> np.ndarray:
    """The outermost ring of pixels of an (H, W) or (H, W, C) array, as (n,) or (n, C)."""
    return np.concatenate([array[0], array[-1], array[1:-1, 0], array[1:-1, -1]])


def is_dark_on_light(grey: np.ndarray) -> bool:
    """The border (the background) is brighter than the image on average and than its mid-grey.

    Measured on the 10,000 test images of each set: true of none of MNIST and Fashion-MNIST as they are; of every
    MNIST image inverted, and of all but 3 Fashion-MNIST images inverted (items that fill the frame).
    """
    ring = border(grey).astype(np.float64)
    mid = (float(grey.min()) + float(grey.max())) / 2
    return bool(ring.mean() > grey.mean() and ring.mean() > mid)


def _to_grey(image: Image.Image, path: str, grey: bool) -> np.ndarray:
    if is_colour(image) and not grey:
        raise ImageInputError(
            f"{path}: a colour image ({image.mode}) for a model of greyscale images; pass --grey to convert it"
        )
    if image.mode in ("I", "I;16", "F"):  # 16-bit or float greyscale: scale its own range to 0..255
        values = np.asarray(image, dtype=np.float64)
        span = max(values.max() - values.min(), 1e-12)
        return np.round((values - values.min()) / span * 255).astype(np.uint8)
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) or (H, W, C) uint8 -> the given (H, W), antialiased."""
    h, w = size
    return np.asarray(Image.fromarray(array).resize((w, h), Image.Resampling.LANCZOS), dtype=np.uint8)


def pad_square(array: np.ndarray, fill: np.ndarray | float) -> np.ndarray:
    """Pad the shorter side (both ends alike) so that the picture keeps its aspect ratio when resized."""
    h, w = array.shape[:2]
    side = max(h, w)
    out = np.empty((side, side) + array.shape[2:], dtype=array.dtype)
    out[...] = fill
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = array
    return out


def _foreground_box(grey: np.ndarray) -> tuple[slice, slice] | None:
    """Bounding box of the pixels well above the background (a quarter of the way to the brightest)."""
    rows, cols = np.nonzero(grey > 0.25 * float(grey.max()))
    if len(rows) == 0:
        return None
    return slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1)


def _stretch(grey: np.ndarray) -> np.ndarray:
    """Background (the border's median) to 0, brightest pixel to 255: the datasets' black backgrounds."""
    background = float(np.median(border(grey)))
    top = float(grey.max())
    if top - background < 1:
        return np.zeros_like(grey)
    return np.round(np.clip((grey.astype(np.float64) - background) / (top - background), 0, 1) * 255).astype(np.uint8)


def frame_like_mnist(grey: np.ndarray, size: int = 28, box: int = 20) -> np.ndarray:
    """MNIST's recipe: the digit's bounding box scaled to fit box x box, centred by centre of mass in size x size."""
    crop = _foreground_box(grey)
    digit = grey[crop] if crop else grey
    scale = box / max(digit.shape)
    h, w = max(1, round(digit.shape[0] * scale)), max(1, round(digit.shape[1] * scale))
    digit = _resize(digit, (h, w)).astype(np.float64)
    out = np.zeros((size, size))
    total = digit.sum()
    cy, cx = ((np.indices(digit.shape) * digit).sum(axis=(1, 2)) / total) if total > 0 else ((h - 1) / 2, (w - 1) / 2)
    top = int(np.clip(round(size / 2 - 0.5 - cy), 0, size - h))
    left = int(np.clip(round(size / 2 - 0.5 - cx), 0, size - w))
    out[top : top + h, left : left + w] = digit
    return np.round(out).astype(np.uint8)


def frame_like_fashion(grey: np.ndarray, size: int = 28) -> np.ndarray:
    """Fashion-MNIST's recipe: trimmed to the item, padded to a square, longest side scaled to size."""
    crop = _foreground_box(grey)
    item = grey[crop] if crop else grey
    return _resize(pad_square(item, 0), (size, size))


def prepare(
    path: str | Path, dataset: str, shape: tuple[int, int, int], invert: Invert = "auto", grey: bool = False,
    reframe: bool = True,
) -> Prepared:
    """An image file -> uint8 (C, H, W) like the images of ``dataset`` (mnist | fashion_mnist | cifar10).

    ``invert``: ``auto`` inverts a dark-on-light greyscale picture, ``always`` / ``never`` force it.
    ``grey``: convert a colour picture for a greyscale model (refused otherwise).
    ``reframe``: follow the dataset's cropping and centring recipe; False only pads and resizes (denoisers:
    cropping would cut the noise the model is meant to remove).
    """
    image = _flatten_alpha(read_image(path))
    channels, h, w = shape
    notes: list[str] = []
    if channels == 3:  # colour photographs, never inverted (CIFAR-10 has no background convention)
        rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        inverted = invert == "always"
        if inverted:
            rgb = 255 - rgb
            notes.append("inverted (--invert always)")
        if rgb.shape[:2] != (h, w):
            notes.append(f"resized from {rgb.shape[1]}x{rgb.shape[0]}")
            fill = np.median(border(rgb), axis=0)
            rgb = _resize(pad_square(rgb, fill), (h, w))
        return Prepared(str(path), rgb.transpose(2, 0, 1).copy(), inverted, notes)
    if channels != 1:
        raise ValueError(f"models of {channels}-channel images are not supported")
    was_colour = is_colour(image)
    values = _to_grey(image, str(path), grey)
    if was_colour:
        notes.append("converted to greyscale (--grey)")
    inverted = invert == "always" or (invert == "auto" and is_dark_on_light(values))
    if inverted:
        values = 255 - values
        notes.append(INVERTED_NOTE)
    if values.shape != (h, w):
        notes.append(f"resized from {values.shape[1]}x{values.shape[0]}")
        if not reframe:
            values = _resize(pad_square(values, np.median(border(values))), (h, w))
        elif dataset == "mnist":
            values = frame_like_mnist(_stretch(values), size=h)
        else:
            values = frame_like_fashion(_stretch(values), size=h)
    return Prepared(str(path), values[None].copy(), inverted, notes)


# ----------------------------------------------------------------------------- reporting, shared by both frameworks


def top_k(probabilities: np.ndarray, classes: list[str] | tuple[str, ...], k: int = 3) -> list[tuple[str, float]]:
    order = np.argsort(-probabilities, kind="stable")[:k]
    return [(classes[i], float(probabilities[i])) for i in order]


def prediction_rows(prepared: list[Prepared], probabilities: np.ndarray, classes, k: int = 3) -> list[dict]:
    """One dict per file: its path, the top-k classes and probabilities, whether it was inverted, notes."""
    rows = []
    for item, p in zip(prepared, probabilities):
        best = top_k(p, classes, k)
        row = {"file": item.path, "label": best[0][0], "probability": best[0][1]}
        for i, (name, prob) in enumerate(best, start=1):
            row[f"top{i}"], row[f"p{i}"] = name, prob
        row["inverted"] = item.inverted
        row["notes"] = "; ".join(item.notes)
        rows.append(row)
    return rows


def format_row(row: dict) -> str:
    """``digit.png: 7 (98.1 %), 1 (1.2 %), 9 (0.3 %)  [inverted (dark object on light background)]``."""
    tops = ", ".join(f"{row[f'top{i}']} ({100 * row[f'p{i}']:.1f} %)" for i in range(1, 10) if f"top{i}" in row)
    return f"{row['file']}: {tops}" + (f"  [{row['notes']}]" if row["notes"] else "")


def write_rows(rows: list[dict], json_path: str | None = None, csv_path: str | None = None) -> None:
    if json_path:
        write_text(json_path, json.dumps(rows, indent=2) + "\n")
    if csv_path:
        with open(csv_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["file"])
            writer.writeheader()
            writer.writerows(rows)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def save_png(array: np.ndarray, path: str | Path) -> None:
    """Save a (C, H, W) float image in [0, 1] (C = 1 or 3) as an 8-bit PNG."""
    values = np.round(np.clip(np.asarray(array, dtype=np.float64), 0, 1) * 255).astype(np.uint8)
    Image.fromarray(values[0] if values.shape[0] == 1 else values.transpose(1, 2, 0)).save(path)


def write_restored(prepared: list[Prepared], restored: np.ndarray, out: str | None, out_dir: str | None,
                   quiet: bool) -> list[dict]:
    """A denoiser's restorations (N, C, H, W in [0, 1]) as PNGs: ``out`` (one image) or ``<name>_denoised.png``
    in ``out_dir``; each given back the way it came (dark on light when it was inverted). One row per file."""
    if out_dir:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    rows = []
    for item, image in zip(prepared, restored):
        if item.inverted:
            image = 1.0 - image
        target = Path(out) if out else Path(out_dir) / f"{Path(item.path).stem}_denoised.png"
        save_png(image, target)
        rows.append({"file": item.path, "output": str(target), "inverted": item.inverted, "notes": "; ".join(item.notes)})
        if not quiet:
            print(f"{item.path} -> {target}" + (f"  [{rows[-1]['notes']}]" if item.notes else ""))
    return rows
