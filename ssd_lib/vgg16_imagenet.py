"""ImageNet VGG16 weights in SSD's base network: fc6/fc7 reduced to convolutions as in the paper.

Explained in notebooks/06_model.ipynb.
"""

from __future__ import annotations

import os

import keras
import numpy as np

from .vgg_ssd import _VGG16_BLOCKS

__all__ = ["VGG16_WEIGHTS_FILE", "load_vgg16_imagenet"]

#: The Keras VGG16 ImageNet weights with the fully connected top (needed for fc6/fc7).
VGG16_WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
_VGG16_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + VGG16_WEIGHTS_FILE
)


def load_vgg16_imagenet(model: keras.Model, vgg: keras.Model | None = None) -> keras.Model:
    """Copy ImageNet VGG16 weights into an SSD's base network, reducing fc6/fc7 as the paper did.

    conv1_1 .. conv5_3 are copied unchanged. The fully connected fc6 (25088 -> 4096, i.e. a
    7x7x512x4096 convolution over pool5) becomes SSD's 3x3 dilated convolution with 1024
    filters by taking every 3rd spatial tap (rows/cols 0, 3, 6) and every 4th filter; fc7
    (4096 -> 4096) becomes a 1x1x1024x1024 convolution with every 4th input and output.

    Args:
        model: an SSD from :func:`~ssd_lib.vgg_ssd.build_ssd300` / :func:`~ssd_lib.vgg_ssd.build_ssd512` (layers conv1_1 .. fc7).
        vgg: ``keras.applications.VGG16(include_top=True)``; ``None`` builds it with
            ``weights="imagenet"`` (downloads ``VGG16_WEIGHTS_FILE`` once, ~528 MB).

    Returns:
        ``model``, with its base weights replaced.

    Raises:
        RuntimeError: when the ImageNet weights cannot be downloaded; the message names the file
            to download and the folder to put it in.
        ValueError: when ``vgg`` has no fully connected top (``include_top=False``).
    """
    if vgg is None:
        try:
            vgg = keras.applications.VGG16(weights="imagenet", include_top=True)
        except Exception as error:  # the download raises various errors offline
            folder = os.path.join(os.path.expanduser("~"), ".keras", "models")
            raise RuntimeError(
                f"load_vgg16_imagenet: could not load the ImageNet VGG16 weights ({error}). "
                f"Download {VGG16_WEIGHTS_FILE} from {_VGG16_WEIGHTS_URL} and put it in {folder}/ "
                f"(Keras looks there first), then call again."
            ) from error
    vgg_names = {layer.name for layer in vgg.layers}
    if not {"fc1", "fc2"} <= vgg_names:
        raise ValueError(
            "load_vgg16_imagenet: vgg has no fully connected layers fc1/fc2; build it with "
            "keras.applications.VGG16(include_top=True)"
        )
    for block, n_convs, _ in _VGG16_BLOCKS:
        for index in range(1, n_convs + 1):
            kernel, bias = vgg.get_layer(f"block{block}_conv{index}").get_weights()
            model.get_layer(f"conv{block}_{index}").set_weights([kernel, bias])
    fc6_kernel, fc6_bias = _reduce_fc6(*vgg.get_layer("fc1").get_weights())
    model.get_layer("fc6").set_weights([fc6_kernel, fc6_bias])
    fc7_kernel, fc7_bias = _reduce_fc7(*vgg.get_layer("fc2").get_weights())
    model.get_layer("fc7").set_weights([fc7_kernel, fc7_bias])
    return model


def _reduce_fc6(kernel, bias):
    """fc1 ``(25088, 4096)`` -> ``(3, 3, 512, 1024)`` dilated-conv kernel, bias ``(1024,)``.

    Keras flattens pool5 ``(7, 7, 512)`` row-major, so the dense kernel reshapes to a 7x7
    convolution kernel ``(rows, cols, in, out)`` directly.
    """
    as_conv = np.asarray(kernel).reshape(7, 7, 512, 4096)
    return as_conv[::3, ::3, :, ::4], np.asarray(bias)[::4]


def _reduce_fc7(kernel, bias):
    """fc2 ``(4096, 4096)`` -> ``(1, 1, 1024, 1024)`` kernel, bias ``(1024,)``."""
    return np.asarray(kernel)[::4, ::4].reshape(1, 1, 1024, 1024), np.asarray(bias)[::4]
