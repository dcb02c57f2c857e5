"""torchvision's ``ssd300_vgg16`` state dict -> the layers of :func:`ssd_lib.vgg_ssd.build_ssd300`.

torchvision's SSD300 is the same network as ours (VGG16 with ceil-mode pool3, pool5 3x3/1, fc6
3x3 dilation 6, fc7 1x1, conv4_3 L2-normalized with a learned scale initialised to 20, the four
extra blocks, 3x3 heads), so its weights fit ours once

- each convolution kernel goes from PyTorch's ``(out, in, height, width)`` to Keras'
  ``(height, width, in, out)`` (``transpose(2, 3, 1, 0)``);
- the inputs follow its convention: RGB pixels in [0, 255] minus its mean (123, 117, 104),
  no division (``image_mean`` 0.48235, 0.45882, 0.40784 and ``image_std`` 1/255 on [0, 1]);
- the anchors are its default boxes: the COCO scales 0.07 .. 1.05, and each box's width and
  height clamped to the image size (``clamp_anchor_sizes``).

The head channels need no reordering: torchvision reshapes ``(N, boxes * K, H, W)`` to
``(N, H * W * boxes, K)`` with box-major channels, as our ``Reshape`` does, and its default boxes
per cell come in our order (ar 1, the extra ar 1 box, 2, 1/2, 3, 1/3). Its box coder's weights
(10, 10, 5, 5) are our variances (0.1, 0.1, 0.2, 0.2). ``tests/test_pretrained_torchvision.py``
checks all of this against torchvision's own outputs (``tools/torchvision_reference.py``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config import SSD300_COCO

__all__ = [
    "COCO_CATEGORIES",
    "TORCHVISION_SSD300_COCO",
    "TORCHVISION_PREPROCESS",
    "TORCHVISION_DECODING",
    "torchvision_layer_weights",
]

#: torchvision's COCO categories 1..90 (COCO category ids; "N/A" where the id has no category).
COCO_CATEGORIES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "N/A", "backpack",
    "umbrella", "N/A", "N/A", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "N/A", "wine glass", "cup", "fork", "knife", "spoon", "bowl",
    "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut",
    "cake", "chair", "couch", "potted plant", "bed", "N/A", "dining table", "N/A", "N/A", "toilet",
    "N/A", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
    "toaster", "sink", "refrigerator", "N/A", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
)  # fmt: skip

#: torchvision's SSD300 COCO: 91 outputs (background + COCO ids 1..90), its default boxes.
TORCHVISION_SSD300_COCO = dataclasses.replace(
    SSD300_COCO, n_classes=len(COCO_CATEGORIES), class_names=COCO_CATEGORIES, clamp_anchor_sizes=True
)
#: Its input normalisation, ``(x / 255 - mean) / (1 / 255)``, as a :class:`ssd_lib.model_layers.Preprocess`.
TORCHVISION_PREPROCESS = {"mean": (0.48235 * 255, 0.45882 * 255, 0.40784 * 255), "scale": 1.0, "to_bgr": False}
#: ``decode_detections`` settings equal to its ``postprocess_detections``: ``score_thresh`` 0.01,
#: ``topk_candidates`` 400 per class, ``nms_thresh`` 0.45, ``detections_per_img`` 200, boxes
#: clipped to the image before NMS.
TORCHVISION_DECODING = {"confidence_threshold": 0.01, "iou_threshold": 0.45, "top_k": 200,
                        "candidates_per_class": 400, "clip_boxes": True}  # fmt: skip

# Our layer -> torchvision's module. VGG16 ``features`` holds conv1_1 .. conv4_3 (ReLUs and pools
# in between); ``extra.0`` starts at pool4: conv5_1 .. conv5_3, then pool5, fc6, fc7 in ``.7``.
_VGG_INDICES = {"conv1_1": 0, "conv1_2": 2, "conv2_1": 5, "conv2_2": 7, "conv3_1": 10, "conv3_2": 12,
                "conv3_3": 14, "conv4_1": 17, "conv4_2": 19, "conv4_3": 21}  # fmt: skip
_MODULES = {
    **{layer: f"backbone.features.{index}" for layer, index in _VGG_INDICES.items()},
    "conv5_1": "backbone.extra.0.1", "conv5_2": "backbone.extra.0.3", "conv5_3": "backbone.extra.0.5",
    "fc6": "backbone.extra.0.7.1", "fc7": "backbone.extra.0.7.3",
    **{f"conv{6 + block}_{part + 1}": f"backbone.extra.{1 + block}.{2 * part}"
       for block in range(4) for part in range(2)},
    **{f"class_head_{k}": f"head.classification_head.module_list.{k}" for k in range(6)},
    **{f"box_head_{k}": f"head.regression_head.module_list.{k}" for k in range(6)},
}  # fmt: skip
_L2_SCALE = "backbone.scale_weight"


def torchvision_layer_weights(state_dict: dict[str, np.ndarray], source="state dict"):
    """Our SSD300 layers' weights from a torchvision ``ssd300_vgg16`` state dict.

    Args:
        state_dict: parameter name -> array, as :func:`ssd_lib.pretrained.pth.read_pth` gives.
        source: what to call the state dict in error messages (the file name).

    Returns:
        ``{layer name: [kernel (H, W, in, out), bias]}`` plus ``{"conv4_3_norm": [scale (512,)]}``
        for the layers of :func:`ssd_lib.vgg_ssd.build_ssd300`.

    Raises:
        ValueError: parameters missing or unknown (names them: not a torchvision SSD300).
    """
    expected = {f"{module}.{kind}" for module in _MODULES.values() for kind in ("weight", "bias")}
    expected.add(_L2_SCALE)
    missing, unknown = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
    if missing or unknown:
        raise ValueError(
            f"{source}: not torchvision's ssd300_vgg16 state dict: missing {missing[:5]}"
            f"{' ...' if len(missing) > 5 else ''}, unknown {unknown[:5]}{' ...' if len(unknown) > 5 else ''}"
        )
    weights = {"conv4_3_norm": [np.asarray(state_dict[_L2_SCALE], dtype=np.float32)]}
    for layer, module in _MODULES.items():
        kernel = np.asarray(state_dict[f"{module}.weight"], dtype=np.float32)
        if kernel.ndim != 4:
            raise ValueError(f"{source}: {module}.weight should be a convolution kernel, has shape {kernel.shape}")
        weights[layer] = [kernel.transpose(2, 3, 1, 0), np.asarray(state_dict[f"{module}.bias"], np.float32)]
    return weights
