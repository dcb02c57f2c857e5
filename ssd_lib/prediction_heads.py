"""The class and box heads every SSD network ends with, and the source feature maps they read.

The output is one tensor ``(batch, n_anchors, n_classes + 1 + 4)``: class logits (background
first), then the 4 encoded box offsets, in the order of :func:`ssd_lib.anchors.generate_anchors`
(layer by layer, cells row-major, boxes within a cell). :func:`prediction_heads` builds that
tensor from the source feature maps for every model, so the order is defined once.

Explained in notebooks/06_model.ipynb.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from .config import SSDConfig
from .model_layers import L2Normalization, _regularizer

__all__ = ["prediction_heads", "source_layer_names", "feature_maps"]


def prediction_heads(sources, config: SSDConfig, l2_regularization: float = 5e-4):
    """The class and box heads on every source feature map, reshaped and joined in anchor order.

    For source ``k`` with ``n_boxes = config.boxes_per_cell(k)``: a 3x3 convolution
    ``class_head_k`` with ``n_boxes * (n_classes + 1)`` filters and one ``box_head_k`` with
    ``n_boxes * 4``. Their ``(batch, rows, cols, n_boxes * channels)`` outputs are reshaped to
    ``(batch, rows * cols * n_boxes, channels)``: row-major reshaping keeps the order
    row, col, box, which is the anchor order of :func:`ssd_lib.anchors.layer_anchors`.

    Args:
        sources: one feature-map tensor ``(batch, rows_k, cols_k, channels_k)`` per layer of
            ``config``; their sizes must equal ``config.feature_map_sizes``.
        config: the anchor layout (boxes per cell, number of classes).
        l2_regularization: weight decay of the head kernels (Caffe convention).

    Returns:
        ``(batch, n_anchors, n_classes + 1 + 4)`` float32 tensor: class logits, then offsets.

    Raises:
        ValueError: when the number or the sizes of the sources disagree with the config.
    """
    if len(sources) != config.n_layers:
        raise ValueError(
            f"prediction_heads: the network has {len(sources)} source layers but the config "
            f"has {config.n_layers} predictor layers (feature_map_sizes)"
        )
    n_channels = config.n_classes + 1
    class_outputs, box_outputs = [], []
    for k, source in enumerate(sources):
        rows, cols = source.shape[1], source.shape[2]
        if (rows, cols) != tuple(config.feature_map_sizes[k]):
            raise ValueError(
                f"config.feature_map_sizes[{k}] = {config.feature_map_sizes[k]} does not fit the "
                f"architecture: its source layer {k} has a {rows}x{cols} feature map for "
                f"{config.image_height}x{config.image_width} inputs"
            )
        n_boxes = config.boxes_per_cell(k)
        class_map = layers.Conv2D(
            n_boxes * n_channels, 3, padding="same", name=f"class_head_{k}",
            kernel_regularizer=_regularizer(l2_regularization),
        )(source)  # (batch, rows, cols, n_boxes * (n_classes + 1))
        box_map = layers.Conv2D(
            n_boxes * 4, 3, padding="same", name=f"box_head_{k}",
            kernel_regularizer=_regularizer(l2_regularization),
        )(source)  # (batch, rows, cols, n_boxes * 4)
        class_outputs.append(
            layers.Reshape((rows * cols * n_boxes, n_channels), name=f"class_reshape_{k}")(class_map)
        )
        box_outputs.append(layers.Reshape((rows * cols * n_boxes, 4), name=f"box_reshape_{k}")(box_map))
    # The final layers compute in float32, so a mixed-precision model still outputs float32.
    join = lambda tensors, name: (  # noqa: E731
        layers.Concatenate(axis=1, name=name, dtype="float32")(tensors)
        if len(tensors) > 1 else layers.Activation("linear", name=name, dtype="float32")(tensors[0])
    )  # fmt: skip
    class_logits = join(class_outputs, "class_logits")  # (batch, n_anchors, n_classes + 1)
    box_offsets = join(box_outputs, "box_offsets")  # (batch, n_anchors, 4)
    return layers.Concatenate(axis=-1, name="predictions", dtype="float32")([class_logits, box_offsets])


def source_layer_names(model: keras.Model, before_normalization: bool = False) -> list[str]:
    """Names of the layers whose outputs feed ``class_head_0``, ``class_head_1``, ... in order.

    With ``before_normalization``, an :class:`L2Normalization` source is replaced by the layer
    feeding it (``conv4_3`` instead of ``conv4_3_norm``), to look at the raw features.
    """
    names = []
    for k in range(len(model.layers)):
        try:
            head = model.get_layer(f"class_head_{k}")
        except ValueError:
            break
        source = head.input._keras_history.operation
        if before_normalization and isinstance(source, L2Normalization):
            source = source.input._keras_history.operation
        names.append(source.name)
    if not names:
        raise ValueError(f"source_layer_names: model {model.name!r} has no layer 'class_head_0'")
    return names


def feature_maps(model: keras.Model, images, layer_names) -> list[np.ndarray]:
    """The outputs of the named layers for a batch of images, as numpy arrays.

    Args:
        model: a functional model (e.g. from :func:`~ssd_lib.vgg_ssd.build_ssd300`).
        images: ``(batch, H, W, 3)`` RGB images in [0, 255], as the model takes them.
        layer_names: layers to read, e.g. ``source_layer_names(model)``.

    Returns:
        One ``(batch, rows, cols, channels)`` array per layer name.
    """
    outputs = [model.get_layer(name).output for name in layer_names]
    probe = keras.Model(model.input, outputs)
    results = probe(np.asarray(images, dtype="float32"), training=False)
    if len(outputs) == 1:  # a model with one output returns the tensor, not a list
        results = [results]
    return [keras.ops.convert_to_numpy(result) for result in results]
