from functools import partial

from core import configs
from keras_ref.models import denoising_ae, unet_dae
from lightning_impl.models import DenoisingAE, UNetDAE
from parity.registry import ModelPair, register

RECIPE = str(configs.find("denoise_reference.yaml"))

# The reference denoiser. Its stride-2 'same' transposed convolutions are where the frameworks differ:
# lightning_impl.models.denoising.SameConvTranspose2d crops like Keras, so the weights map one-to-one
# (torch (in, out, kh, kw) <-> Keras (kh, kw, out, in)).
register(
    ModelPair(
        name="denoising_ae",
        trained_by="denoise_reference.yaml",
        torch_model=DenoisingAE,
        keras_model=denoising_ae,
        input_shape=(1, 28, 28),
        dataset="fashion_mnist",
        task="denoising",
        # Check 5 trains configs/denoise_reference.yaml (sigma 0.3, 2 epochs) with lightning_impl.train_denoiser
        # and keras_ref.train_denoiser, and compares the mean test PSNR (dB) on the full fixed noisy test copy.
        score="test_psnr",
        train_args={"lightning": ["--config", RECIPE], "keras": ["--config", RECIPE]},
        # Full recipe, mean of 3 seeds: the experiment measured 19.29 dB for the reference AE at sigma 0.3
        # (docs/denoise.md; Lightning, 2 epochs, the whole test set). The band is that figure +- 0.5 dB. The
        # full recipe's seed-to-seed spread is not measured; at the quick budget (128 steps, still learning
        # fast) one run's std was 0.31 dB, and 2 epochs (844 steps) of a converging model spread less, a mean
        # of 3 seeds less again. For scale: the noisy input scores 12.8 dB and the best classical filter
        # ~16.5 dB at sigma 0.3, so a broken recipe falls far outside, while MSE vs BCE (0.04-0.07 dB apart,
        # docs/denoise.md) does not.
        accuracy_band=(18.8, 19.8),
        # Two means of 3 seeds: a difference of 0.5 dB is ~2.5 std of that difference if one run's std is
        # <= 0.25 dB at the full recipe (0.31 dB at the quick budget). The frameworks initialise their
        # weights differently (their own defaults), which the quick budget shows can matter early on.
        accuracy_margin=0.5,
        # Quick budget (parity.accuracy.QUICK["denoising"]: 1 epoch of 4,096 images, batch 32, first 1,000
        # test images): measured seeds 1-3 at 16.28-17.01 dB (Lightning) and 16.49-16.82 dB (Keras); the
        # band leaves ~0.8 dB below the lowest and ~1 dB above the highest. 64 steps instead of 128 land at
        # 13.3-15.2 dB, 4 steps at 7.9 dB, the noisy input at 12.8 dB: a model that has not learned fails.
        quick_accuracy_band=(15.5, 18.0),
    )
)

# The improved denoiser of the denoising study, at its recipe's widths (configs/denoise_unet.yaml): BatchNorm,
# skip connections and a residual output, the same layers by the same names in both frameworks.
UNET_RECIPE = "denoise_unet.yaml"
unet_args = configs.load(UNET_RECIPE)["model"]["net"]["init_args"]
register(
    ModelPair(
        name="unet_dae",
        trained_by=UNET_RECIPE,
        torch_model=partial(UNetDAE, **unet_args),
        keras_model=partial(unet_dae, (28, 28, unet_args["in_channels"]),
                            **{k: v for k, v in unet_args.items() if k != "in_channels"}),
        input_shape=(unet_args["in_channels"], 28, 28),
        dataset="fashion_mnist",
        task="denoising",
        score="test_psnr",
        # float64 steps (checks 4 and 6d) on 8 images: at 48 channels and 28x28 they took ~300 s of a 2-core
        # CPU's parity run at the default 32
        step_batch=8,
    )
)
