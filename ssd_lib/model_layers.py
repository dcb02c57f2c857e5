"""The layers every SSD network shares: input normalization and L2 normalization.

Every model takes RGB float32 images in [0, 255] (what the input pipeline yields and what
``predict`` takes) and starts with a :class:`Preprocess` layer: the only place where channel
order, mean and scaling are defined, so training and inference cannot disagree.

Only ``keras.layers`` and ``keras.ops`` are used: the same code runs with the TensorFlow, JAX
and PyTorch backends of Keras 3.

Explained in notebooks/06_model.ipynb.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from .config import IMAGENET_MEAN_RGB

__all__ = ["Preprocess", "L2Normalization"]


@keras.saving.register_keras_serializable(package="ssd_lib")
class Preprocess(layers.Layer):
    """Input normalization inside the model: optional RGB -> BGR, subtract a mean, multiply.

    ``output = (channels(x) - mean) * scale`` with ``x`` RGB in [0, 255] and ``mean`` given in
    RGB order (it is reordered with the channels when ``to_bgr`` is set).

    Args:
        mean: per-channel mean in RGB order (3 values) to subtract, in [0, 255] units.
        scale: factor applied after the subtraction.
        to_bgr: reverse the channel order (Caffe-trained VGG16 weights expect BGR).

    The defaults are the Caffe VGG16 convention (BGR, ImageNet mean, no scaling), which the
    ImageNet weights of :func:`~ssd_lib.vgg16_imagenet.load_vgg16_imagenet` were trained with.
    """

    def __init__(self, mean=IMAGENET_MEAN_RGB, scale=1.0, to_bgr=True, **kwargs):
        super().__init__(**kwargs)
        if len(mean) != 3:
            raise ValueError(f"Preprocess.mean: expected 3 values (R, G, B), got {mean!r}")
        self.mean = tuple(float(m) for m in mean)
        self.scale = float(scale)
        self.to_bgr = bool(to_bgr)

    def call(self, images):
        mean = self.mean[::-1] if self.to_bgr else self.mean
        if self.to_bgr:
            images = ops.flip(images, axis=-1)
        mean = ops.convert_to_tensor(np.array(mean, dtype="float32"), dtype=images.dtype)
        return (images - mean) * ops.cast(self.scale, images.dtype)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "scale": self.scale, "to_bgr": self.to_bgr}


@keras.saving.register_keras_serializable(package="ssd_lib")
class L2Normalization(layers.Layer):
    """Normalize each position's feature vector to unit L2 norm, then scale per channel.

    ``y[..., c] = gamma[c] * x[..., c] / ||x[...]||_2`` with a learnable ``gamma`` (one value per
    channel, initialized to ``gamma_init``; 20 in the paper, from ParseNet). SSD applies it to
    conv4_3, whose activations are much larger than those of the deeper layers.
    The norm is computed in float32 (a sum of 512 squares overflows float16).

    Args:
        gamma_init: initial value of every channel's scale.
        epsilon: added to the squared norm to avoid dividing by zero.
    """

    def __init__(self, gamma_init=20.0, epsilon=1e-10, **kwargs):
        super().__init__(**kwargs)
        self.gamma_init = float(gamma_init)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        self.gamma = self.add_weight(
            name="gamma",
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.gamma_init),
            trainable=True,
        )

    def call(self, features):
        features32 = ops.cast(features, "float32")
        squared_norm = ops.sum(ops.square(features32), axis=-1, keepdims=True)  # (..., 1)
        normalized = features32 * ops.rsqrt(squared_norm + self.epsilon)
        return ops.cast(normalized * ops.cast(self.gamma, "float32"), features.dtype)

    def get_config(self):
        return {**super().get_config(), "gamma_init": self.gamma_init, "epsilon": self.epsilon}


def _regularizer(l2_regularization: float):
    """Caffe-style weight decay ``wd`` (gradient += wd * w) as a Keras L2 penalty ``wd/2 * w**2``."""
    return keras.regularizers.L2(l2_regularization / 2.0) if l2_regularization else None
