from keras_ref.denoising_models import denoising_ae
from lightning_impl.denoising_models import DenoisingAE
from parity.registry import ModelPair, register

# The reference denoiser. Its stride-2 'same' transposed convolutions are where the frameworks differ:
# lightning_impl.denoising_models.SameConvTranspose2d crops like Keras, so the weights map one-to-one
# (torch (in, out, kh, kw) <-> Keras (kh, kw, out, in)).
register(
    ModelPair(
        name="denoising_ae",
        torch_model=DenoisingAE,
        keras_model=denoising_ae,
        input_shape=(1, 28, 28),
        dataset="fashion_mnist",
        task="denoising",
    )
)
