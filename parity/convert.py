"""Bring a trained model from Keras into Lightning, or from Lightning into Keras, checked on real test images.

    python -m parity.convert runs/mnist_specified_cnn_keras/version_0 --to-lightning specified.ckpt
    python -m parity.convert model.keras --to-lightning specified.ckpt          # a .keras file, from any backend
    python -m parity.convert best.weights.h5 --pair specified_cnn --to-lightning specified.ckpt
    python -m parity.convert runs/mnist_specified_cnn/version_0 --to-keras specified.keras
    python -m parity.convert specified.keras --to-lightning specified.ckpt --backend jax

The architecture must be one of the registered parity pairs (``python -m parity --help`` lists them); a .keras
file or a Lightning checkpoint names it (matched by its layers and weight shapes, or by the checkpoint's model
card), a bare weights file needs ``--pair``. The weights go through ``parity.transfer``, the mapping checks 1-4
prove. Before writing, the conversion checks itself as check 3 does: real test images of the pair's dataset
(1,000 by default) through both models, every layer's output compared; it refuses to write when any differs by
more than check 3's bound (parity.checks.OUTPUT_TOL) times the layer's largest output where that exceeds 1 (a
trained model's activations reach ~10-100, and float32 rounding grows with them), and prints the measured
difference either way.

Written: ``--to-lightning FILE.ckpt``, a Lightning checkpoint with its model card (the training split's
normalisation, class names, architecture), which ``lightning_impl.predict`` and
``lightning_impl.card.load_model`` read; ``--to-keras FILE.keras``, the Keras model, with
``FILE.model_card.json`` beside it for ``python -m keras_ref.predict FILE.model_card.json IMAGE``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras
import lightning
import numpy as np
import torch

from keras_ref import backend
from keras_ref.fit import save_atomically
from core import flags
from lightning_impl.card import CARD_KEY, class_path, load_model, make_card
from lightning_impl import checkpoints
from lightning_impl.checkpoints import CheckpointError
from lightning_impl.data.noise import NoisyDataModule
from core.runs import data_errors, fail, read_record, write_json
from lightning_impl.tasks.classifier import ImageClassifier
from lightning_impl.tasks.denoiser import Denoiser
from parity.checks import OUTPUT_TOL, datamodule, layer_differences, nhwc, one_thread, real_batch
from parity.registry import ModelPair, all_pairs
from parity.transfer import TransferError, keras_to_torch, layer_pairs, torch_to_keras

N_IMAGES = 1000  # real test images the conversion is checked on


class ConversionError(ValueError):
    """A source that cannot be converted, or a conversion that does not hold; the message is one line."""


# --- the architecture ----------------------------------------------------------------------------------------


def net_config(pair: ModelPair) -> dict:
    """The pair's torch architecture as a model card's class_path / init_args."""
    make, kwargs = pair.torch_model, {}
    if isinstance(make, functools.partial):
        make, kwargs = make.func, dict(make.keywords)
    if not isinstance(make, type):
        raise ConversionError(f"{pair.name}: its torch model is not built by a class, so no checkpoint can name it")
    return {"class_path": f"{make.__module__}.{make.__qualname__}", "init_args": kwargs}


def _keras_signature(model: keras.Model) -> list:
    return [(layer.name, type(layer).__name__, [tuple(w.shape) for w in layer.weights]) for layer in model.layers]


def _torch_signature(net: torch.nn.Module) -> tuple:
    return class_path(net), [(k, tuple(v.shape)) for k, v in net.state_dict().items()]


def pair_of_keras(model: keras.Model) -> ModelPair:
    """The registered pair whose Keras twin has this model's layers (names, types, weight shapes)."""
    sig = _keras_signature(model)
    found = []
    for pair in all_pairs().values():
        twin = pair.keras_model()
        if not twin.built:
            c, *spatial = pair.input_shape
            twin.build((None, *spatial, c))
        if _keras_signature(twin) == sig:
            found.append(pair)
    if not found:
        raise ConversionError(f"the Keras model {model.name!r} is none of the registered architectures "
                              f"({', '.join(sorted(all_pairs()))}): its layers or weight shapes differ")
    return found[0]  # pairs with identical layers (the same net on two datasets) convert identically


def pair_of_torch(net: torch.nn.Module, dataset: str) -> ModelPair:
    sig = _torch_signature(net)
    found = [p for p in all_pairs().values() if _torch_signature(p.torch_model()) == sig]
    found = [p for p in found if p.dataset == dataset] or found
    if not found:
        raise ConversionError(f"the checkpoint's {class_path(net)} is none of the registered architectures "
                              f"({', '.join(sorted(all_pairs()))}) with these weight shapes")
    return found[0]


# --- reading ---------------------------------------------------------------------------------------------------


def load_keras(source: Path, pair_name: str | None) -> tuple[keras.Model, ModelPair]:
    """A .keras model (or a keras_ref run folder holding model.keras), or a weights file with ``pair_name``."""
    if source.is_dir():
        source = source / "model.keras"
        if not source.is_file():
            raise ConversionError(f"{source.parent}: no model.keras there (pass the .weights.h5 file and --pair)")
    if not source.is_file():
        raise ConversionError(f"{source}: no such file")
    if source.name.endswith(".weights.h5"):
        if pair_name is None:
            raise ConversionError(f"{source}: a weights file does not say its architecture: add --pair NAME")
        pair = all_pairs()[pair_name]
        model = build_keras(pair)
        try:
            model.load_weights(source)
        except (OSError, ValueError) as err:
            raise ConversionError(f"{source}: not weights of {pair.name} ({str(err).splitlines()[0]})") from None
        return model, pair
    if source.suffix != ".keras":
        raise ConversionError(f"{source}: expected a .keras file, a .weights.h5 file or a keras_ref run folder")
    try:  # safe_mode (the default): a file whose layers would run arbitrary code is refused
        model = keras.saving.load_model(source, compile=False)
    except (OSError, ValueError, TypeError) as err:
        raise ConversionError(f"{source}: cannot be loaded as a Keras model ({str(err).splitlines()[0]})") from None
    pair = pair_of_keras(model)
    if pair_name is not None and pair_name != pair.name and _keras_signature(build_keras(all_pairs()[pair_name])) != _keras_signature(model):
        raise ConversionError(f"{source}: its layers are {pair.name}'s, not {pair_name}'s")
    return model, all_pairs()[pair_name] if pair_name else pair


def build_keras(pair: ModelPair) -> keras.Model:
    model = pair.keras_model()
    if not model.built:
        c, *spatial = pair.input_shape
        model.build((None, *spatial, c))
    return model


# --- the check -------------------------------------------------------------------------------------------------


def verify(pair: ModelPair, net: torch.nn.Module, model: keras.Model, n: int) -> dict:
    """Check 3 on the converted model: n real test images through both, every layer's output compared."""
    x, y = real_batch(pair, "test", n)
    net.eval()
    with keras.device("cpu"), one_thread():
        pairs = layer_pairs(net, model, pair.input_shape)
        diffs = layer_differences(pairs, net, model, x, relative=True)
        absolute = layer_differences(pairs, net, model, x)
        with torch.no_grad():
            t_out = net(x).numpy()
        k_out = keras.ops.convert_to_numpy(model(nhwc(x), training=False))
    worst = max(diffs, key=diffs.get)
    result = {"pair": pair.name, "images": len(x), "max_diff": diffs[worst], "worst_layer": worst,
              "max_abs_diff": max(absolute.values()),
              "output_max_abs_diff": float(np.max(np.abs(t_out - k_out.reshape(t_out.shape) if k_out.ndim == 2 else
                                                           t_out - np.moveaxis(k_out, -1, 1)))),
              "bound": OUTPUT_TOL, "backend": keras.backend.backend()}
    if pair.task == "classification":
        t_pred, k_pred = t_out.argmax(1), k_out.argmax(1)
        labels = y.numpy()
        result |= {"lightning_acc": float((t_pred == labels).mean()), "keras_acc": float((k_pred == labels).mean()),
                   "predictions_agree": int((t_pred == k_pred).sum())}
    return result


def _report(result: dict) -> str:
    text = (f"{result['pair']} on {result['images']:,} test images ({result['backend']} backend): max |Lightning - Keras| "
            f"/ max(1, max |output|) {result['max_diff']:.2e} over every layer (worst: {result['worst_layer']}; "
            f"absolute {result['max_abs_diff']:.2e}, model output {result['output_max_abs_diff']:.2e}), "
            f"bound {result['bound']:g}")
    if "lightning_acc" in result:
        text += (f"; accuracy {100 * result['lightning_acc']:.2f} % / {100 * result['keras_acc']:.2f} %, "
                 f"same prediction for {result['predictions_agree']:,} of {result['images']:,}")
    return text


def _checked(result: dict) -> None:
    print(_report(result), file=sys.stderr, flush=True)
    if not result["max_diff"] <= result["bound"]:
        raise ConversionError(f"not written: the converted model differs by {result['max_diff']:.2e} x max(1, max |output|) "
                              f"(layer {result['worst_layer']}), more than check 3's bound {result['bound']:g}")


# --- the two directions ------------------------------------------------------------------------------------------


def lightning_module(pair: ModelPair, net: torch.nn.Module, shift_tta: int = 0, flip_tta: bool = False):
    if pair.task == "classification":
        return ImageClassifier(net, num_classes=net_classes(net), shift_tta=shift_tta, flip_tta=flip_tta).eval()
    return Denoiser(net).eval()


def keras_tta(source: Path) -> tuple[int, bool]:
    """The test-time views a Keras model is tested with, (shifts in pixels (core.shift_views), mirrors or not): its
    model card's, when it has one (a keras_ref run's model_card.json, or the card convert wrote beside a .keras file)."""
    model_file = source / "model.keras" if source.is_dir() else source
    for card in (model_file.parent / "model_card.json", card_path(model_file)):
        if card.is_file() and (record := read_record(card, "model card")).get("model") == model_file.name:
            return int(record.get("shift_tta", 0)), bool(record.get("flip_tta", False))
    return 0, False


def net_classes(net: torch.nn.Module) -> int:
    return list(net.state_dict().values())[-1].shape[0]  # the last layer's bias or weight rows: one per class


def to_lightning(source: Path, out: Path, pair_name: str | None = None, n: int = N_IMAGES) -> dict:
    """Keras (a .keras file, a keras_ref run folder or a .weights.h5 file with ``pair_name``) -> a Lightning
    checkpoint with its model card, written only when it computes what the Keras model computes."""
    model, pair = load_keras(source, pair_name)
    net = pair.torch_model().float().eval()
    keras_to_torch(model, net, pair.input_shape)
    result = verify(pair, net, model, n)
    _checked(result)
    if hasattr(net, "whitened"):  # the stem came with the weights: a fine-tuning run must not set it again
        net.whitened.fill_(True)
    module = lightning_module(pair, net, *keras_tta(source))
    data = datamodule(pair.dataset) if pair.task == "classification" else NoisyDataModule(dataset=pair.dataset)
    card = make_card(module, data, net_config(pair))
    checkpoint = {"state_dict": module.state_dict(), CARD_KEY: card, "epoch": 0, "global_step": 0,
                  "pytorch-lightning_version": lightning.__version__, "hyper_parameters": dict(module.hparams),
                  "converted_from": {"file": str(source), "keras_backend": keras.backend.backend(), "check": result}}
    checkpoints.save(checkpoint, out)
    return result | {"written": str(out)}


def to_keras(source: Path, out: Path, n: int = N_IMAGES) -> dict:
    """A Lightning run folder or checkpoint -> a .keras file (+ its model card for keras_ref.predict), written only
    when it computes what the Lightning model computes."""
    if out.suffix != ".keras":
        raise ConversionError(f"--to-keras {out}: Keras saves whole models as .keras files")
    module, card, file = load_model(source)
    net = module.net.float().eval()
    pair = pair_of_torch(net, card["dataset"])
    model = build_keras(pair)
    torch_to_keras(net, model, pair.input_shape)
    result = verify(pair, net, model, n)
    _checked(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_atomically(model.save, Path(out))
    keras_card = {"task": card["task"], "dataset": card["dataset"], "classes": card["classes"],
                  "input_shape": card["input_shape"], "model": out.name, "converted_from": str(file)}
    keras_card |= {k: card[k] for k in ("mean", "std", "sigma", "eval_sigma", "shift_tta", "flip_tta") if k in card}
    write_json(card_path(out), keras_card)
    return result | {"written": str(out), "card": str(card_path(out))}


def card_path(keras_file: Path) -> Path:
    return keras_file.with_name(keras_file.name.removesuffix(".keras") + ".model_card.json")


# --- the command ---------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = flags.Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("source", type=Path, metavar="SOURCE",
                   help="Keras: a .keras file, a keras_ref run folder or a .weights.h5 file; Lightning: a run folder or .ckpt")
    to = p.add_mutually_exclusive_group(required=True)
    to.add_argument("--to-lightning", type=Path, metavar="FILE.ckpt", help="write a Lightning checkpoint (SOURCE is Keras)")
    to.add_argument("--to-keras", type=Path, metavar="FILE.keras", help="write a .keras model (SOURCE is Lightning)")
    p.add_argument("--pair", choices=sorted(all_pairs()), metavar="NAME",
                   help=f"the architecture of a bare weights file, of: {', '.join(sorted(all_pairs()))}")
    p.add_argument("--limit-test", type=flags.positive_int, default=N_IMAGES, metavar="N",
                   help="real test images the conversion is checked on (default %(default)s)")
    flags.add(p, "backend", "json")
    args = backend.parse_args(p, argv)
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    with data_errors():
        try:
            if args.to_lightning is not None:
                result = to_lightning(args.source, args.to_lightning, args.pair, args.limit_test)
            else:
                if args.pair:
                    fail("--pair: a Lightning checkpoint names its architecture itself")
                result = to_keras(args.source, args.to_keras, args.limit_test)
        except (ConversionError, CheckpointError, TransferError) as err:
            fail(str(err))
    if args.json:
        write_json(args.json, result)
    print(result["written"])
    return result


if __name__ == "__main__":
    main()
