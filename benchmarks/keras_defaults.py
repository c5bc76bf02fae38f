"""A Keras run with Keras' own defaults where keras_ref.torch_like makes the twins train like torch: the "before"
side of the Lightning–Keras gap that recipe parity closes (docs/parity.md, "The gap before and after").

    python benchmarks/keras_defaults.py --config configs/mnist_improved.yaml --seed 0 --runs-dir runs/keras_defaults

Takes keras_ref.train's own arguments and trains exactly as it does, except for the two things recipe parity
changed in how the twins learn:

* initialisation: the twins keep Keras' glorot_uniform kernels and zero biases (no ``torch_init``);
* Adam: Keras' own ``keras.optimizers.Adam`` (ε added to √v with the bias corrections folded into the step size)
  instead of ``TorchAdam`` (torch's update). A recipe with coupled weight decay (torch's Adam ``weight_decay``)
  is refused: Keras' Adam has no such term, so there is no "Keras default" to compare.

Everything else is today's trainer: the same data split, normalisation and epoch order as Lightning (so a run is
still paired, image by image, with the Lightning run of its seed), the same augmentation and schedule. The
difference between these runs and ``python -m keras_ref.train`` of the same seeds is what parity's part 1 bought.
"""

from __future__ import annotations

import sys

import keras_ref  # noqa: F401  (Keras backend before keras)
import keras

from keras_ref import recipes, train


def keras_adam(lr, l2: float = 0.0, **kwargs):
    if l2:
        raise SystemExit("keras_defaults: this recipe has torch's coupled weight decay, which Keras' Adam lacks")
    return keras.optimizers.Adam(lr, **kwargs)


def main(argv: list[str] | None = None) -> dict:
    train.torch_init = lambda model, seed: model  # Keras' glorot kernels and zero biases
    recipes.TorchAdam = keras_adam  # Keras' Adam update
    return train.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
