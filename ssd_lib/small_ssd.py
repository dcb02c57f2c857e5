"""A small SSD that trains from scratch on a CPU.

Explained in notebooks/06_model.ipynb.
"""

from __future__ import annotations

import math

import keras
from keras import layers

from .config import SSD_SMALL_SHAPES, SSDConfig
from .model_layers import Preprocess, _regularizer
from .prediction_heads import prediction_heads

__all__ = ["build_small_ssd"]


def _conv_bn_relu(x, filters, kernel_size, strides, padding, name, l2_regularization):
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=False,
        kernel_regularizer=_regularizer(l2_regularization), name=name,
    )(x)  # fmt: skip
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_small_ssd(config: SSDConfig = SSD_SMALL_SHAPES, width_multiplier: float = 1.0,
                    l2_regularization: float = 5e-4) -> keras.Model:  # fmt: skip
    """A small SSD that trains from scratch on a CPU: Conv-BatchNorm-ReLU stages.

    Each stage halves the resolution with a 2x2 stride-2 convolution, then applies a 3x3 one
    (all followed by BatchNorm and ReLU). Stages repeat until the first feature map size of the
    config, whose stage output is the first source. Every further predictor layer comes from one
    more stage when the map halves (``ceil(n / 2)``), or from a 3x3 convolution without padding
    when it shrinks by 2 (3 -> 1). The 2x2 stride-2 windows (like VGG's 2x2 pooling) keep each
    cell's receptive field centred on its anchors; a 3x3 stride-2 convolution with ``same``
    padding would shift every map by half a cell. The layout follows the config: change its
    image size or feature maps and the network adapts, or raises if it cannot produce them.

    Channels: 16, 32, 64, then 128 per stage (times ``width_multiplier``).
    The input is scaled to [-1, 1] (RGB, mean 127.5, scale 1/127.5) by :class:`~ssd_lib.model_layers.Preprocess`.

    Args:
        config: the small model's anchor layout (default :data:`~ssd_lib.config.SSD_SMALL_SHAPES`).
        width_multiplier: multiplies every backbone layer's channel count.
        l2_regularization: weight decay of the convolution kernels (Caffe convention).

    Returns:
        A ``keras.Model`` with the same input/output convention as :func:`~ssd_lib.vgg_ssd.build_ssd300`.

    Raises:
        ValueError: if the first feature map is not the image size divided by a power of 2,
            or a later map is neither ``ceil(previous / 2)`` nor ``previous - 2``.
    """
    height, width = config.image_size
    rows0, cols0 = config.feature_map_sizes[0]
    n_stages = round(math.log2(height / rows0))
    if n_stages < 1 or height != rows0 * 2**n_stages or width != cols0 * 2**n_stages:
        raise ValueError(
            f"build_small_ssd: config.feature_map_sizes[0] = {config.feature_map_sizes[0]} must "
            f"be the image size {config.image_size} divided by a power of 2"
        )
    channels = lambda stage: max(8, int(round(min(16 * 2**stage, 128) * width_multiplier)))  # noqa: E731

    def stage_block(x, stage, name):
        x = _conv_bn_relu(x, channels(stage), 2, 2, "same", f"{name}_down", l2_regularization)
        return _conv_bn_relu(x, channels(stage), 3, 1, "same", f"{name}_conv", l2_regularization)

    images = keras.Input(shape=(height, width, 3), name="images")
    x = Preprocess(mean=(127.5, 127.5, 127.5), scale=1 / 127.5, to_bgr=False, name="preprocess")(images)
    for stage in range(n_stages):
        x = stage_block(x, stage, f"stage{stage + 1}")
    sources = [x]
    for k in range(1, config.n_layers):
        (rows_in, cols_in), (rows, cols) = config.feature_map_sizes[k - 1], config.feature_map_sizes[k]
        stage = n_stages + k - 1
        if (rows, cols) == (math.ceil(rows_in / 2), math.ceil(cols_in / 2)):
            x = stage_block(x, stage, f"extra{k}")
        elif (rows, cols) == (rows_in - 2, cols_in - 2):
            x = _conv_bn_relu(x, channels(stage), 3, 1, "valid", f"extra{k}_conv", l2_regularization)
        else:
            raise ValueError(
                f"build_small_ssd: config.feature_map_sizes[{k}] = {(rows, cols)} must be half of "
                f"the previous map {(rows_in, cols_in)} (rounded up) or 2 smaller"
            )
        sources.append(x)
    return keras.Model(images, prediction_heads(sources, config, l2_regularization), name="small_ssd")
