"""The SSD colour distortion on the accelerator: drawn on the host, applied in the compiled step.

The host pipeline (:class:`ssd_lib.pipeline.DetectionDataset` with ``photometric_on_device``)
draws each image's :class:`ssd_lib.augment.ColorParams` exactly as before, from the same random
stream, but does not touch the pixels: it sends the parameters along with the uint8 batch as one
row of :data:`PHOTOMETRIC_PARAMETERS` numbers (:func:`photometric_parameters`).
:class:`PhotometricDistortion`, a Keras layer in front of the detector
(:func:`with_photometric_distortion`), then applies them with ``keras.ops`` inside the training
step: the same steps in the same order with the same rounding as
:func:`ssd_lib.augment.PhotometricDistort.apply` (brightness, contrast, saturation and hue, contrast,
channel swap; each step rounded to whole levels and clipped to [0, 255], as uint8 images are), on
the photo's pixels only (the expand canvas keeps the mean). Results equal the host's to within one
level where float rounding lands on a half.

The colour maths is the most expensive part of the host augmentation (about a third of its CPU
time on photos); on a GPU it costs a few elementwise passes over the batch.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .augment import AugmentationPlan, photo_region

__all__ = ["PHOTOMETRIC_PARAMETERS", "photometric_parameters", "PhotometricDistortion",
           "with_photometric_distortion"]  # fmt: skip

#: Numbers per image: brightness delta, contrast factor, contrast first (0/1), saturation factor,
#: hue shift in sixths of a turn (in [0, 6)), hue rotated (0/1), channel order (3), photo rows
#: (start, stop) and columns (start, stop) in output pixels.
PHOTOMETRIC_PARAMETERS = 13


def photometric_parameters(plan: AugmentationPlan) -> np.ndarray:
    """The ``(PHOTOMETRIC_PARAMETERS,)`` float32 row of one plan (neutral without colour)."""
    rows, columns = photo_region(plan)
    color = plan.color
    if color is None:
        return np.array([0, 1, 1, 1, 0, 0, 0, 1, 2, 0, 0, 0, 0], np.float32)
    hue_sixths = np.float32((color.hue_shift / 60.0) % 6.0)  # as the host computes it
    return np.array([color.brightness_delta, color.contrast_factor, color.contrast_first,
                     color.saturation_factor, hue_sixths, color.hue_shift != 0, *color.channel_order,
                     *rows, *columns], np.float32)  # fmt: skip


def _levels(values):
    """Round to whole levels (half to even, as ``numpy.rint``) and clip to [0, 255]."""
    return ops.clip(ops.round(values), 0.0, 255.0)


def _saturation_hue(images, saturation_factor, hue_sixths, rotate_hue):
    """The host's HSV step (:func:`ssd_lib.augment.color._saturation_hue`) for ``(b, H, W, 3)``
    float images of whole levels; ``saturation_factor``, ``hue_sixths``, ``rotate_hue`` are
    ``(b, 1, 1)``."""
    red, green, blue = images[..., 0], images[..., 1], images[..., 2]
    value = ops.maximum(ops.maximum(red, green), blue)  # (b, H, W)
    chroma = value - ops.minimum(ops.minimum(red, green), blue)
    new_chroma = ops.minimum(chroma * saturation_factor, value)
    safe_chroma = ops.maximum(chroma, 1e-6)
    # Saturation only: every channel's distance to V scales with the chroma.
    scaled = value[..., None] - (value[..., None] - images) * (new_chroma / safe_chroma)[..., None]
    # Hue rotation: hue in sixths from the channel that is the max, rotated and wrapped to [0, 6).
    hue = (red - green) + chroma * 4.0  # blue is the max
    hue = hue + ((blue - red) + chroma * 2.0 - hue) * ops.cast(value == green, "float32")
    hue = hue + ((green - blue) - hue) * ops.cast(value == red, "float32")
    hue = hue / safe_chroma + hue_sixths
    hue = hue - ops.floor(hue * (1 / 6)) * 6.0
    one_minus_f = ops.clip(ops.stack([2.0 - ops.abs(hue - 3.0), ops.abs(hue - 2.0) - 1.0,
                                      ops.abs(hue - 4.0) - 1.0], axis=-1), 0.0, 1.0)  # fmt: skip
    rotated = value[..., None] - one_minus_f * new_chroma[..., None]
    result = ops.where(rotate_hue[..., None] > 0, rotated, scaled)
    return ops.floor(result + 0.5)  # the host's round-to-nearest of values in [0, 255]


@keras.saving.register_keras_serializable(package="ssd_lib")
class PhotometricDistortion(keras.layers.Layer):
    """Applies per-image colour parameters (:func:`photometric_parameters`) to a uint8 batch.

    Call: ``layer(images, parameters)`` with ``images`` ``(b, H, W, 3)`` (uint8 or float, whole
    levels in [0, 255]) and ``parameters`` ``(b, PHOTOMETRIC_PARAMETERS)``; returns float32
    ``(b, H, W, 3)`` in [0, 255]. Always float32 (under a mixed-precision policy too): the HSV
    maths needs it. No weights, no randomness: the host drew the parameters.
    """

    def __init__(self, **kwargs):
        kwargs["dtype"] = "float32"
        super().__init__(**kwargs)

    def call(self, images, parameters):
        images = ops.cast(images, "float32")
        parameters = ops.cast(parameters, "float32")
        column = lambda index: parameters[:, index][:, None, None, None]  # noqa: E731  (b, 1, 1, 1)
        brightness, contrast, contrast_first = column(0), column(1), column(2)
        saturation, hue_sixths, rotate_hue = column(3)[..., 0], column(4)[..., 0], column(5)[..., 0]
        distorted = _levels(images + brightness)
        distorted = ops.where(contrast_first > 0, _levels(distorted * contrast), distorted)
        hsv_step = ops.logical_or(saturation != 1.0, rotate_hue > 0)[..., None]
        distorted = ops.where(hsv_step, _saturation_hue(distorted, saturation, hue_sixths, rotate_hue), distorted)
        distorted = ops.where(contrast_first > 0, distorted, _levels(distorted * contrast))
        order = ops.one_hot(ops.cast(parameters[:, 6:9], "int32"), 3)  # (b, 3 outputs, 3 inputs)
        distorted = ops.einsum("bhwi,boi->bhwo", distorted, order)
        height, width = ops.shape(images)[1], ops.shape(images)[2]
        rows = ops.arange(height, dtype="float32")[None, :, None]
        columns = ops.arange(width, dtype="float32")[None, None, :]
        bound = lambda index: parameters[:, index, None, None]  # noqa: E731  (b, 1, 1)
        inside = ops.logical_and(ops.logical_and(rows >= bound(9), rows < bound(10)),
                                 ops.logical_and(columns >= bound(11), columns < bound(12)))  # (b, H, W)
        return ops.where(inside[..., None], distorted, images)

    def compute_output_shape(self, images_shape, parameters_shape):
        return images_shape


def with_photometric_distortion(model: keras.Model) -> keras.Model:
    """The model to train on ``{"images": uint8, "photometric": parameters}`` batches:
    :class:`PhotometricDistortion`, then ``model`` (whose weights it shares; save ``model``)."""
    images = keras.Input(model.input_shape[1:], dtype="uint8", name="images")
    parameters = keras.Input((PHOTOMETRIC_PARAMETERS,), name="photometric")
    distorted = PhotometricDistortion(name="photometric_distortion")(images, parameters)
    return keras.Model({"images": images, "photometric": parameters}, model(distorted), name=f"{model.name}_train")
