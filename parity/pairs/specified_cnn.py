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
        accuracy_band=(0.988, 0.996),
    )
)
