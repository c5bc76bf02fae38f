"""Keras' BatchNormalization computed by torch's fused kernel on the torch backend.

On the torch backend Keras builds BatchNormalization from element-wise ops (moments as separate mean and variance
reductions, the normalisation as a chain of sub/mul/add/rsqrt, each with its own backward), which makes a BatchNorm
layer cost a Keras epoch about twice what it costs torch (benchmarks/keras_batchnorm.py; docs/performance.md,
"Keras"). ``FusedBatchNormalization`` is the same layer — same variables, same arguments, same arithmetic: the
batch's biased variance normalises, and the moving statistics follow Keras' rule, ``moving = moving · momentum +
batch · (1 − momentum)`` with the biased variance — but on the torch backend its forward and backward are torch's
one fused ``batch_norm`` kernel on a channels-last view of the NHWC tensor (no copy). Elsewhere (JAX, TensorFlow,
a mask, renormalisation, another axis) it is Keras' own layer. Parity checks 3 and 4 compare it with torch's
BatchNorm as they compare Keras' own (tests/test_keras_batch_norm.py compares it with Keras' own).
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="keras_ref")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization, on torch's fused kernel where the backend is torch (see the module)."""

    def _fusable(self, inputs, mask) -> bool:
        return (keras.backend.backend() == "torch" and mask is None and not self.renorm
                and self.axis in (-1, len(inputs.shape) - 1))

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import torch
        from torch.nn import functional as F

        x = inputs
        if x.dtype in (torch.float16, torch.bfloat16):  # as Keras: BatchNorm computes in float32 at least
            x = x.float()
        nchw = x.movedim(-1, 1)  # a view: NCHW with channels-last strides, which torch's kernel reads in place
        gamma = self.gamma.value.to(x.dtype) if self.scale else None
        beta = self.beta.value.to(x.dtype) if self.center else None
        if training and self.trainable:
            channels = nchw.shape[1]
            # momentum 1 makes torch write the batch's own mean and (unbiased) variance into these buffers
            mean = torch.zeros(channels, dtype=x.dtype, device=x.device)
            variance = torch.ones(channels, dtype=x.dtype, device=x.device)
            out = F.batch_norm(nchw, mean, variance, gamma, beta, training=True, momentum=1.0, eps=self.epsilon)
            n = nchw.numel() // channels
            with torch.no_grad():
                biased = variance * ((n - 1) / n)  # torch wrote the unbiased variance; Keras keeps the biased one
                m = self.momentum
                self.moving_mean.assign(self.moving_mean.value.to(x.dtype) * m + mean * (1.0 - m))
                self.moving_variance.assign(self.moving_variance.value.to(x.dtype) * m + biased * (1.0 - m))
        else:
            out = F.batch_norm(nchw, self.moving_mean.value.to(x.dtype), self.moving_variance.value.to(x.dtype),
                               gamma, beta, training=False, eps=self.epsilon)
        return keras.ops.cast(out.movedim(1, -1), self.compute_dtype)
