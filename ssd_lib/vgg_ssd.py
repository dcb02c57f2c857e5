"""SSD300 and SSD512: the paper's networks on a VGG16 base network.

Explained in notebooks/06_model.ipynb.
"""

from __future__ import annotations

import keras
from keras import layers

from .config import SSD300_VOC, SSD512_VOC, SSDConfig
from .model_layers import L2Normalization, Preprocess, _regularizer
from .prediction_heads import prediction_heads

__all__ = ["build_ssd300", "build_ssd512"]

# VGG16's convolutions: (block, number of 3x3 convolutions, filters).
_VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))


def _conv(x, filters, kernel_size, name, l2_regularization, strides=1, padding="same",
          dilation_rate=1, activation="relu"):  # fmt: skip
    return layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, dilation_rate=dilation_rate,
        activation=activation, kernel_regularizer=_regularizer(l2_regularization), name=name,
    )(x)  # fmt: skip


def _vgg16_base(images, l2_regularization):
    """VGG16 conv1_1..conv5_3, pool5 3x3/1, fc6 (3x3, dilation 6) and fc7 (1x1) as in SSD.

    Returns ``(conv4_3, fc7)`` tensors. Pooling uses ``same`` padding, which on odd sizes adds
    the extra column on the right/bottom exactly like Caffe's ceil-mode pooling (75 -> 38).
    """
    x = images
    conv4_3 = None
    for block, n_convs, filters in _VGG16_BLOCKS:
        for index in range(1, n_convs + 1):
            x = _conv(x, filters, 3, f"conv{block}_{index}", l2_regularization)
        if block == 4:
            conv4_3 = x
        if block < 5:
            x = layers.MaxPooling2D(2, strides=2, padding="same", name=f"pool{block}")(x)
    x = layers.MaxPooling2D(3, strides=1, padding="same", name="pool5")(x)
    x = _conv(x, 1024, 3, "fc6", l2_regularization, dilation_rate=6)
    fc7 = _conv(x, 1024, 1, "fc7", l2_regularization)
    return conv4_3, fc7


def _extra_block(x, name, bottleneck, filters, kernel_size, stride, pad, l2_regularization):
    """conv{name}_1 (1x1 bottleneck) then conv{name}_2 with explicit symmetric zero padding.

    Explicit padding (not ``same``) reproduces Caffe's ``pad: 1`` exactly: with stride 2 on an
    even size, ``same`` would pad only the bottom/right and shift every cell by one pixel.
    """
    x = _conv(x, bottleneck, 1, f"conv{name}_1", l2_regularization)
    if pad:
        x = layers.ZeroPadding2D(pad, name=f"conv{name}_pad")(x)
    return _conv(x, filters, kernel_size, f"conv{name}_2", l2_regularization, strides=stride, padding="valid")


def _build_vgg_ssd(config, l2_regularization, extra_blocks, name, preprocess):
    images = keras.Input(shape=(config.image_height, config.image_width, 3), name="images")
    x = Preprocess(name="preprocess", **(preprocess or {}))(images)
    conv4_3, fc7 = _vgg16_base(x, l2_regularization)
    sources = [L2Normalization(gamma_init=20.0, name="conv4_3_norm")(conv4_3), fc7]
    x = fc7
    for block in extra_blocks:
        x = _extra_block(x, *block, l2_regularization=l2_regularization)
        sources.append(x)
    return keras.Model(images, prediction_heads(sources, config, l2_regularization), name=name)


def build_ssd300(config: SSDConfig = SSD300_VOC, l2_regularization: float = 5e-4,
                 preprocess: dict | None = None) -> keras.Model:  # fmt: skip
    """SSD300: VGG16 + extra layers, predicting from conv4_3, fc7, conv6_2 .. conv9_2.

    Feature maps for 300x300 inputs: 38, 19, 10, 5, 3, 1 (Liu et al. 2016, Fig. 2). The extra
    layers are conv6 (1x1x256, 3x3x512 stride 2), conv7 (1x1x128, 3x3x256 stride 2), conv8 and
    conv9 (1x1x128, 3x3x256 without padding).

    Args:
        config: anchor layout and classes; its ``feature_map_sizes`` must be what this
            architecture produces for ``config.image_size`` (38, 19, 10, 5, 3, 1 at 300x300).
        l2_regularization: weight decay of all convolution kernels, Caffe convention (the
            gradient gets ``+ wd * w``; implemented as a Keras L2 penalty of ``wd / 2``).
            0 disables it. Biases and the L2Normalization scale are not decayed.
        preprocess: :class:`~ssd_lib.model_layers.Preprocess` arguments (``mean``, ``scale``, ``to_bgr``) for weights
            trained with another input convention (torchvision's: RGB, mean (123, 117, 104));
            None: the Caffe VGG16 convention.

    Returns:
        A ``keras.Model`` from ``(batch, H, W, 3)`` RGB [0, 255] images to
        ``(batch, config.n_anchors, config.n_classes + 1 + 4)`` float32 logits and offsets.

    Raises:
        ValueError: if the config's feature map sizes or layer count do not fit.
    """
    extra_blocks = (
        ("6", 256, 512, 3, 2, 1),  # name, bottleneck, filters, kernel, stride, pad: 19 -> 10
        ("7", 128, 256, 3, 2, 1),  # 10 -> 5
        ("8", 128, 256, 3, 1, 0),  # 5 -> 3
        ("9", 128, 256, 3, 1, 0),  # 3 -> 1
    )
    return _build_vgg_ssd(config, l2_regularization, extra_blocks, "ssd300", preprocess)


def build_ssd512(config: SSDConfig = SSD512_VOC, l2_regularization: float = 5e-4,
                 preprocess: dict | None = None) -> keras.Model:  # fmt: skip
    """SSD512: as :func:`build_ssd300` with one more extra block; maps 64, 32, 16, 8, 4, 2, 1.

    conv6_2 .. conv9_2 are 3x3 stride 2 (padding 1), conv10_2 is 4x4 with padding 1 (2 -> 1),
    as in the original Caffe model. Arguments, return value and errors as :func:`build_ssd300`.
    """
    extra_blocks = (
        ("6", 256, 512, 3, 2, 1),  # 32 -> 16
        ("7", 128, 256, 3, 2, 1),  # 16 -> 8
        ("8", 128, 256, 3, 2, 1),  # 8 -> 4
        ("9", 128, 256, 3, 2, 1),  # 4 -> 2
        ("10", 128, 256, 4, 1, 1),  # 2 -> 1
    )
    return _build_vgg_ssd(config, l2_regularization, extra_blocks, "ssd512", preprocess)
