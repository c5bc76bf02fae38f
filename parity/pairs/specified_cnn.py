from keras_ref.models import specified_cnn
from lightning_impl.models import SpecifiedCNN
from parity.registry import ModelPair, register

register(
    ModelPair(
        name="specified_cnn",
        torch_model=SpecifiedCNN,
        keras_model=specified_cnn,
        input_shape=(1, 28, 28),
        dataset="mnist",
        # The band for the default recipe of lightning_impl.train and keras_ref.train (train.DEFAULTS).
        accuracy_band=(0.988, 0.996),
        # One epoch of the same recipe (the schedule then spans that one epoch), one seed: see docs/parity.md.
        quick_accuracy_band=(0.975, 0.995),
        accuracy_margin=0.004,
    )
)
