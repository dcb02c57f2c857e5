"""Theoretical receptive fields of a CNN's cells, in input pixels.

Explained in notebooks/06_model.ipynb.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import layers

from .prediction_heads import source_layer_names

__all__ = ["ReceptiveField", "receptive_fields"]


@dataclasses.dataclass(frozen=True)
class ReceptiveField:
    """Theoretical receptive field of one layer's cells, in input pixels.

    Attributes:
        size: side of the square region of the input that can influence one cell.
        jump: distance between neighbouring cells' centres (the effective stride).
        start: centre of cell (0, 0), with pixel ``i`` covering ``[i, i + 1)`` (so its centre is
            ``i + 0.5``); cell ``j`` is centred at ``start + j * jump``.
    """

    size: int
    jump: int
    start: float

    def corners(self, row: int, col: int) -> np.ndarray:
        """``(4,)`` pixel corners ``(xmin, ymin, xmax, ymax)`` of cell ``(row, col)``'s field
        (not clipped: the field of a deep layer extends beyond the image)."""
        center_x, center_y = self.start + col * self.jump, self.start + row * self.jump
        half = self.size / 2
        return np.array([center_x - half, center_y - half, center_x + half, center_y + half])


def _layer_geometry(layer, input_size, axis=1):
    """(effective kernel, stride, left padding) of a spatial layer along one axis (0 = y,
    1 = x), or None for layers without spatial extent."""
    if isinstance(layer, layers.ZeroPadding2D):
        return 1, 1, layer.padding[axis][0]  # zeros on the left: cell 0 moves left by the padding
    if isinstance(layer, (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D)):
        kernel, stride, dilation = layer.kernel_size[axis], layer.strides[axis], layer.dilation_rate[axis]
    elif isinstance(layer, (layers.MaxPooling2D, layers.AveragePooling2D)):
        kernel, stride, dilation = layer.pool_size[axis], layer.strides[axis], 1
    else:
        return None
    effective = dilation * (kernel - 1) + 1
    left = 0
    if layer.padding == "same":
        output_size = -(-input_size // stride)
        left = max((output_size - 1) * stride + effective - input_size, 0) // 2
    return effective, stride, left


def receptive_fields(model: keras.Model, layer_names=None) -> dict[str, ReceptiveField]:
    """Theoretical receptive fields of the cells of layers of a chain-structured CNN.

    Follows each layer's single input back to the model input and applies, per layer with
    effective kernel ``k`` (``dilation * (kernel - 1) + 1``), stride ``s`` and left padding ``p``:
    ``size += (k - 1) * jump``, ``start += ((k - 1) / 2 - p) * jump``, ``jump *= s``.
    Layers without spatial extent (activations, BatchNorm, L2Normalization) change nothing.

    Args:
        model: a functional Keras model, e.g. from :func:`~ssd_lib.vgg_ssd.build_ssd300`.
        layer_names: layers to report; default: :func:`~ssd_lib.prediction_heads.source_layer_names` of the model.

    Returns:
        ``{layer name: ReceptiveField}`` in the order of ``layer_names``.

    Raises:
        ValueError: if a layer on the way has several inputs (not a chain), or the field differs
            between the y and x directions (non-square kernels or padding).

    Example:
        >>> from ssd_lib.vgg_ssd import build_ssd300
        >>> receptive_fields(build_ssd300())["conv4_3_norm"]
        ReceptiveField(size=92, jump=8, start=4.0)
    """
    if layer_names is None:
        layer_names = source_layer_names(model)
    results = {}
    for name in layer_names:
        chain = []  # layers from ``name`` back to the input
        layer = model.get_layer(name)
        while not isinstance(layer, keras.layers.InputLayer):
            if isinstance(layer.input, (list, tuple)):
                raise ValueError(
                    f"receptive_fields: layer {layer.name!r} has several inputs; only chains of "
                    "single-input layers are supported"
                )
            chain.append(layer)
            layer = layer.input._keras_history.operation
        per_axis = []
        for axis in (0, 1):  # y, then x
            size, jump, start = 1, 1, 0.5
            for layer in reversed(chain):
                geometry = _layer_geometry(layer, layer.input.shape[1 + axis], axis)
                if geometry is None:
                    continue
                effective, stride, left = geometry
                size += (effective - 1) * jump
                start += ((effective - 1) / 2 - left) * jump
                jump *= stride
            per_axis.append(ReceptiveField(size=size, jump=jump, start=start))
        if per_axis[0] != per_axis[1]:
            raise ValueError(
                f"receptive_fields: layer {name!r} has different fields along y ({per_axis[0]}) "
                f"and x ({per_axis[1]})"
            )
        results[name] = per_axis[1]
    return results
