"""ssd_keras's SSD300 weights (Keras 2 HDF5) -> the layers of :func:`ssd_lib.vgg_ssd.build_ssd300`.

ssd_keras (Pierluigi Ferrari) ships the original Caffe SSD300 weights, e.g.
``VGG_VOC0712_SSD_300x300_iter_120000.h5`` (Pascal VOC 07+12), converted to Keras 2's HDF5
weight layout: the file lists its layers in the attribute ``layer_names``; each layer is a group
whose attribute ``weight_names`` lists its arrays in order (``conv1_1/kernel:0``,
``conv1_1/bias:0``), stored at ``<layer>/<weight name>``. A full saved model keeps the same
layout under ``model_weights``.

Its layer names are Caffe's, which are ours for the base network (``conv1_1`` .. ``fc7``,
``conv6_1`` .. ``conv9_2``, ``conv4_3_norm``); the heads are ``<source>_mbox_conf`` and
``<source>_mbox_loc`` (our ``class_head_k`` and ``box_head_k``). The kernels are already in
Keras' ``(height, width, in, out)`` layout and the head channels in our order (box-major,
anchors per cell 1, 1', 2, 1/2, 3, 1/3), so the arrays are copied unchanged. What changes is the
input: Caffe's VGG16 takes BGR pixels minus the mean (104, 117, 123) in BGR order, which
ssd_keras computes inside its model; our :class:`ssd_lib.model_layers.Preprocess` does the same.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["SSD_KERAS_PREPROCESS", "SSD_KERAS_DECODING", "ssd_keras_layer_weights"]

#: ssd_keras's SSD300 input: ``subtract_mean=[123, 117, 104]`` (RGB) then ``swap_channels=[2, 1, 0]``.
SSD_KERAS_PREPROCESS = {"mean": (123.0, 117.0, 104.0), "scale": 1.0, "to_bgr": True}
#: ``decode_detections`` settings equal to ssd_keras's ``decode_detections`` (confidence 0.01,
#: IoU 0.45, top-k 200, at most 400 boxes per class after NMS; boxes not clipped).
SSD_KERAS_DECODING = {"confidence_threshold": 0.01, "iou_threshold": 0.45, "top_k": 200,
                      "nms_max_output_size": 400, "clip_boxes": False}  # fmt: skip

_BASE = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv4_1",
         "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3", "fc6", "fc7", "conv6_1", "conv6_2",
         "conv7_1", "conv7_2", "conv8_1", "conv8_2", "conv9_1", "conv9_2")  # fmt: skip
_SOURCES = ("conv4_3_norm", "fc7", "conv6_2", "conv7_2", "conv8_2", "conv9_2")
#: ssd_keras layer -> our layer.
_LAYERS = {
    **{name: name for name in _BASE},
    **{f"{source}_mbox_conf": f"class_head_{k}" for k, source in enumerate(_SOURCES)},
    **{f"{source}_mbox_loc": f"box_head_{k}" for k, source in enumerate(_SOURCES)},
}


def _layer_arrays(group, layer: str, source: str) -> list[np.ndarray]:
    """The arrays of one layer group, in the order of its ``weight_names`` attribute."""
    names = [name.decode() if isinstance(name, bytes) else str(name)
             for name in group.attrs.get("weight_names", [])]  # fmt: skip
    try:
        return [np.asarray(group[name], dtype=np.float32) for name in names]
    except KeyError as error:
        raise ValueError(f"{source}: layer {layer!r} lists a weight it does not hold ({error})") from None


def ssd_keras_layer_weights(path):
    """Our SSD300 layers' weights from an ssd_keras SSD300 HDF5 weights file.

    Args:
        path: ``VGG_VOC0712_SSD_300x300_iter_120000.h5`` or another ssd_keras SSD300 file.

    Returns:
        ``{our layer name: [kernel (H, W, in, out), bias]}`` plus ``{"conv4_3_norm": [gamma (512,)]}``.

    Raises:
        ValueError: not a Keras 2 HDF5 weights file, layers missing or unknown (e.g. an SSD512
            file), or arrays that are not a kernel and a bias (names the file and the layer).
    """
    import h5py

    path = Path(path)
    source = str(path)
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{source}: not an HDF5 file ({error})") from None
    with file:
        root = file["model_weights"] if "model_weights" in file else file
        if "layer_names" not in root.attrs:
            raise ValueError(f"{source}: no 'layer_names' attribute: not a Keras 2 HDF5 weights file")
        layers = [name.decode() if isinstance(name, bytes) else str(name) for name in root.attrs["layer_names"]]
        arrays = {layer: _layer_arrays(root[layer], layer, source) for layer in layers if layer in root}
    with_weights = {layer for layer, values in arrays.items() if values}
    expected = set(_LAYERS) | {"conv4_3_norm"}
    missing, unknown = sorted(expected - with_weights), sorted(with_weights - expected)
    if missing or unknown:
        raise ValueError(f"{source}: not ssd_keras's SSD300: layers missing {missing}, unknown {unknown}")
    gamma = arrays["conv4_3_norm"]
    if len(gamma) != 1:
        raise ValueError(f"{source}: layer 'conv4_3_norm' should hold one scale array, holds {len(gamma)}")
    weights = {"conv4_3_norm": [gamma[0].reshape(-1)]}
    for theirs, ours in _LAYERS.items():
        values = arrays[theirs]
        if len(values) != 2 or values[0].ndim != 4 or values[1].ndim != 1:
            shapes = [value.shape for value in values]
            raise ValueError(f"{source}: layer {theirs!r} should hold a 4-D kernel and a bias, holds {shapes}")
        weights[ours] = values
    return weights
