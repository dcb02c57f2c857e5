"""ssd_lib: the SSD object detector (Liu et al., 2016), the implementation the notebooks teach.

Modules, in the order the notebooks meet them:

- ``config``: :class:`SSDConfig` and the presets of the paper (SSD300/SSD512, VOC/COCO).
- ``boxes``: box formats, areas, pairwise IoU, clipping.
- ``anchors``: the scale schedule and the anchor (prior/default box) grid.
- ``matching``, ``box_coding``, ``encoder``, ``losses``, ``decoder``, ``metrics``: targets, loss,
  detections and mAP.
- ``vgg_ssd``, ``small_ssd``, ``model_layers``, ``prediction_heads``, ``vgg16_imagenet``,
  ``receptive_fields``: the networks, their shared layers and heads, the ImageNet weights, and
  receptive fields.
- ``datasets``, ``augment``, ``pipeline``: data, augmentation, batches.
- ``training`` (package): the recipe, presets, schedule, devices, checkpoints, callbacks and
  the training loop; ``inference``: ``predict`` and the shipped models.
- ``train``: the command ``python -m ssd_lib.train``.
- ``detection_layer``: decoding and NMS inside a Keras model; ``export``: the command
  ``python -m ssd_lib.export`` (``.keras``, SavedModel, TFLite, ONNX).
- ``viz``: drawing, one module per concept (``viz.palette``: the course's colours).
- ``explorers``: the notebooks' interactive explorers, one module per notebook.
- ``pretrained``: published SSD300 weights (torchvision COCO, the original VOC model via
  ssd_keras) converted into our model.
- ``status``: the library reports through :mod:`logging`; ``show_status`` shows its lines.
"""

__version__ = "0.1.0"
