"""Export a trained classifier or denoiser to ONNX, checked against the Lightning model before it is written.

    python -m lightning_impl.export runs/mnist_specified_cnn/version_0                 # -> .../version_0/model.onnx
    python -m lightning_impl.export runs/denoise_reference/version_0 --out dae.onnx

The ONNX file is self-contained: it takes float32 images scaled to [0, 1], shape (N, C, H, W) with any N
(uint8 pixels / 255, no other preprocessing), and normalises inside with the training statistics
stored in the checkpoint. A classifier gives ``logits`` and ``probabilities`` (N, classes); a denoiser
gives ``restored`` (N, C, H, W) in [0, 1]. Class names, dataset and input shape are in the file's metadata.

The check is not optional: real test images (the first --images of the dataset's test split; for a
denoiser, their fixed noisy copy at the model's noise level) go through ONNX Runtime and through the
LightningModule (eval mode, float32); the largest absolute difference is printed, and the file is written
only when it is at most --tolerance. Without the data on disk the export is refused: there is nothing to check with.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core import flags
from lightning_impl.card import CheckpointError, load_model, normalise
from core.runs import fail, write_text
from core.datasets import DataIntegrityError, DatasetUnavailableError, ensure_available, load_split
from core.noise import NOISE_SEEDS, fixed_noisy_copy, to_unit

TOLERANCE = 1e-5


class Exported(nn.Module):
    """What the ONNX file computes, from [0, 1] images: the LightningModule's predict_step after normalisation."""

    def __init__(self, module: nn.Module, card: dict) -> None:
        super().__init__()
        self.module, self.classifier = module, card["task"] == "classifier"
        if self.classifier:
            c = card["input_shape"][0]
            self.register_buffer("mean", torch.tensor(card["mean"]).view(1, c, 1, 1))
            self.register_buffer("std", torch.tensor(card["std"]).view(1, c, 1, 1))

    def forward(self, images: torch.Tensor):
        if self.classifier:
            logits = self.module.eval_logits((images - self.mean) / self.std)
            return logits, logits.softmax(dim=-1)
        return self.module.predict_step(images, 0)


def output_names(card: dict) -> list[str]:
    return ["logits", "probabilities"] if card["task"] == "classifier" else ["restored"]


def to_onnx(model: nn.Module, card: dict) -> bytes:
    """The ONNX bytes of the Exported wrapper (torch.onnx's dynamo exporter), batch dimension dynamic."""
    import onnx

    wrapper = Exported(model, card).eval()
    example = torch.rand(2, *card["input_shape"])
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            wrapper, (example,), dynamo=True, input_names=["images"], output_names=output_names(card),
            dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), verbose=False,
        )
    proto = program.model_proto
    onnx.helper.set_model_props(proto, {
        "task": card["task"], "dataset": card["dataset"], "classes": json.dumps(card["classes"]),
        "input_shape": json.dumps(card["input_shape"]), "net": json.dumps(card["net"]),
        "input": "float32 images in [0, 1], (N, C, H, W); normalisation is inside the graph",
    })
    return proto.SerializeToString()


def check_images(card: dict, n: int, data_dir: str | None) -> torch.Tensor:
    """The first n test images as [0, 1] float (N, C, H, W): clean for a classifier, their fixed noisy copy
    (the one the test metrics use, at the model's evaluation noise level) for a denoiser."""
    images, _ = load_split(card["dataset"], ensure_available(card["dataset"], data_dir, download=False), train=False)
    clean = to_unit(images[:n])
    if card["task"] == "classifier":
        return clean
    sigma = card["eval_sigma"]
    return fixed_noisy_copy(clean, tuple(sigma) if isinstance(sigma, list) else sigma, NOISE_SEEDS["test"])


@torch.inference_mode()
def lightning_outputs(model, card: dict, images: torch.Tensor) -> list[np.ndarray]:
    """The same outputs from the LightningModule itself, its input normalised as lightning_impl.predict does."""
    if card["task"] == "classifier":
        x = normalise(card, torch.round(images * 255).to(torch.uint8))
        logits = model.eval_logits(x)
        return [logits.numpy(), model.predict_step(x, 0).numpy()]
    return [model.predict_step(images, 0).numpy()]


def max_differences(onnx_bytes: bytes, model, card: dict, images: torch.Tensor) -> dict[str, float]:
    """Largest |ONNX Runtime - Lightning| per output, over the whole batch and over a batch of one."""
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    worst = dict.fromkeys(output_names(card), 0.0)
    for batch in (images, images[:1]):
        got = session.run(None, {"images": batch.numpy()})
        want = lightning_outputs(model, card, batch)
        for name, g, w in zip(worst, got, want):
            if g.shape != w.shape:
                raise AssertionError(f"output {name}: ONNX shape {g.shape}, Lightning shape {w.shape}")
            worst[name] = max(worst[name], float(np.abs(g - w).max()))
    return worst


def default_out(checkpoint: Path) -> Path:
    """runs/.../version_n/model.onnx for a checkpoint in a run's checkpoints/ folder, else beside the .ckpt."""
    if checkpoint.parent.name == "checkpoints":
        return checkpoint.parent.parent / "model.onnx"
    return checkpoint.with_suffix(".onnx")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CKPT", help="a run folder (its best checkpoint) or a .ckpt file")
    p.add_argument("--out", metavar="FILE.onnx", help="default: model.onnx in the run folder")
    p.add_argument("--images", type=flags.positive_int, default=256, help="test images run through both implementations")
    p.add_argument("--tolerance", type=flags.positive_float, default=TOLERANCE, help="largest |difference| accepted")
    flags.add(p, "data_dir", "json", "quiet")
    args = p.parse_args(argv)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    try:
        model, card, checkpoint = load_model(args.checkpoint)
    except CheckpointError as err:
        fail(str(err))
    out = Path(args.out) if args.out else default_out(checkpoint)
    try:
        images = check_images(card, args.images, args.data_dir)
    except (DatasetUnavailableError, DataIntegrityError) as err:
        fail(f"the export is checked on real {card['dataset']} test images, and they cannot be read: {str(err).splitlines()[0]}")
    onnx_bytes = to_onnx(model, card)
    differences = max_differences(onnx_bytes, model, card, images)
    worst = max(differences.values())
    report = {
        "checkpoint": str(checkpoint), "task": card["task"], "dataset": card["dataset"], "images": len(images),
        "max_abs_difference": differences, "tolerance": args.tolerance, "onnx": str(out), "bytes": len(onnx_bytes),
        "written": worst <= args.tolerance,
    }
    figures = ", ".join(f"{name} {value:.2e}" for name, value in differences.items())
    if args.json:
        write_text(args.json, json.dumps(report, indent=2) + "\n")
    if worst > args.tolerance:
        fail(f"ONNX Runtime and Lightning differ on {len(images)} test images: max |difference| {figures} "
             f"> {args.tolerance:.0e}; {out} not written")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(onnx_bytes)
    if not args.quiet:
        print(f"checked on {len(images)} {card['dataset']} test images: max |ONNX Runtime - Lightning| {figures} "
              f"<= {args.tolerance:.0e}")
        print(f"wrote {out} ({len(onnx_bytes):,} bytes)")
    return report


if __name__ == "__main__":
    main()
