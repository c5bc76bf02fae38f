"""keras_ref.batch_norm.FusedBatchNormalization is Keras' BatchNormalization: the same outputs in training and
inference, the same moving statistics (Keras' rule, biased variance), the same gradients, the same dtypes under a
mixed policy, and it saves and loads as itself. (Parity checks 3 and 4 compare it with torch's BatchNorm.)"""

from __future__ import annotations

import keras_ref  # noqa: F401  (torch backend before keras)
import keras
import numpy as np
import pytest
from keras import layers

from keras_ref.batch_norm import FusedBatchNormalization


def trained(cls, x, y, steps: int = 3):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(x.shape[1:]), layers.Conv2D(4, 3, padding="same", use_bias=False),
                              cls(momentum=0.9, epsilon=1e-5, name="bn")])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    losses = [float(model.train_on_batch(x, y)) for _ in range(steps)]
    return model, losses


def numpy(t) -> np.ndarray:
    return keras.ops.convert_to_numpy(t)


def test_the_fused_layer_trains_and_predicts_as_keras_own():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(8, 6, 6, 3)) * 3 + 1).astype("float32")
    y = rng.normal(size=(8, 6, 6, 4)).astype("float32")
    ours, our_losses = trained(FusedBatchNormalization, x, y)
    theirs, their_losses = trained(layers.BatchNormalization, x, y)
    np.testing.assert_allclose(our_losses, their_losses, rtol=1e-5)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):  # kernel (the gradients), gamma, beta, moving stats
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    bn = ours.get_layer("bn")
    assert not np.allclose(numpy(bn.moving_mean), 0) and not np.allclose(numpy(bn.moving_variance), 1)  # it moved
    for training in (True, False):
        np.testing.assert_allclose(numpy(ours(x, training=training)), numpy(theirs(x, training=training)), atol=2e-6)


def test_moving_variance_is_keras_biased_one_not_torchs_unbiased():
    x = np.arange(2 * 2 * 2 * 1, dtype="float32").reshape(2, 2, 2, 1)  # 8 values per channel
    bn = FusedBatchNormalization(momentum=0.0)  # the moving statistics become the batch's own
    bn(x, training=True)
    assert float(numpy(bn.moving_mean)[0]) == pytest.approx(x.mean())
    assert float(numpy(bn.moving_variance)[0]) == pytest.approx(x.var())  # numpy's var is the biased one


def test_a_frozen_layer_uses_its_moving_statistics_and_bf16_comes_back_bf16():
    x = np.random.default_rng(1).normal(size=(4, 3, 3, 2)).astype("float32")
    bn = FusedBatchNormalization()
    bn.build(x.shape)
    bn.trainable = False  # Keras: training=True on a frozen BatchNorm is inference
    np.testing.assert_allclose(numpy(bn(x, training=True)), x / np.sqrt(1 + bn.epsilon), rtol=1e-6)
    policy = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_bfloat16")
        ours, theirs = FusedBatchNormalization(), layers.BatchNormalization()
        a, b = ours(x, training=True), theirs(x, training=True)
        assert str(a.dtype) == str(b.dtype) == "torch.bfloat16" and ours.moving_mean.dtype == "float32"
    finally:
        keras.config.set_dtype_policy(policy)


def test_a_model_with_the_fused_layer_saves_and_loads(tmp_path):
    x = np.random.default_rng(2).normal(size=(4, 6, 6, 3)).astype("float32")
    model, _ = trained(FusedBatchNormalization, x, np.zeros((4, 6, 6, 4), "float32"), steps=1)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded.get_layer("bn")) is FusedBatchNormalization
    np.testing.assert_allclose(numpy(loaded(x)), numpy(model(x)), atol=1e-6)
