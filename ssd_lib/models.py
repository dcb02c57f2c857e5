"""The SSD networks: SSD300 / SSD512 on VGG16, a small SSD for CPU, and their building blocks.

Every model takes RGB float32 images in [0, 255] (what the input pipeline yields and what
``predict`` takes) and starts with a :class:`Preprocess` layer: the only place where channel
order, mean and scaling are defined, so training and inference cannot disagree.

The output is one tensor ``(batch, n_anchors, n_classes + 1 + 4)``: class logits (background
first), then the 4 encoded box offsets, in the order of :func:`ssd_lib.anchors.generate_anchors`
(layer by layer, cells row-major, boxes within a cell). :func:`prediction_heads` builds that
tensor from the source feature maps for every model, so the order is defined once.

Only ``keras.layers`` and ``keras.ops`` are used: the same code runs with the TensorFlow, JAX
and PyTorch backends of Keras 3.

Explained in notebooks/06_model.ipynb.
"""

from __future__ import annotations

import dataclasses
import math
import os

import keras
import numpy as np
from keras import layers, ops

from .config import IMAGENET_MEAN_RGB, SSD300_VOC, SSD512_VOC, SSD_SMALL_SHAPES, SSDConfig

__all__ = [
    "IMAGENET_MEAN_RGB",
    "VGG16_WEIGHTS_FILE",
    "Preprocess",
    "L2Normalization",
    "prediction_heads",
    "build_ssd300",
    "build_ssd512",
    "build_small_ssd",
    "source_layer_names",
    "feature_maps",
    "load_vgg16_imagenet",
    "ReceptiveField",
    "receptive_fields",
]

#: The Keras VGG16 ImageNet weights with the fully connected top (needed for fc6/fc7).
VGG16_WEIGHTS_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
_VGG16_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + VGG16_WEIGHTS_FILE
)
# VGG16's convolutions: (block, number of 3x3 convolutions, filters).
_VGG16_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))


# ---------------------------------------------------------------------------------------- layers
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
    ImageNet weights of :func:`load_vgg16_imagenet` were trained with.
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


def _conv(x, filters, kernel_size, name, l2_regularization, strides=1, padding="same",
          dilation_rate=1, activation="relu"):  # fmt: skip
    return layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, dilation_rate=dilation_rate,
        activation=activation, kernel_regularizer=_regularizer(l2_regularization), name=name,
    )(x)  # fmt: skip


# ------------------------------------------------------------------------------ prediction heads
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
        model: a functional model (e.g. from :func:`build_ssd300`).
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


# ------------------------------------------------------------------------------ VGG16-based SSD
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
        preprocess: :class:`Preprocess` arguments (``mean``, ``scale``, ``to_bgr``) for weights
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


# ------------------------------------------------------------------------------------- small SSD
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
    The input is scaled to [-1, 1] (RGB, mean 127.5, scale 1/127.5) by :class:`Preprocess`.

    Args:
        config: the small model's anchor layout (default :data:`SSD_SMALL_SHAPES`).
        width_multiplier: multiplies every backbone layer's channel count.
        l2_regularization: weight decay of the convolution kernels (Caffe convention).

    Returns:
        A ``keras.Model`` with the same input/output convention as :func:`build_ssd300`.

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


# ----------------------------------------------------------------------------- VGG16 weights
def load_vgg16_imagenet(model: keras.Model, vgg: keras.Model | None = None) -> keras.Model:
    """Copy ImageNet VGG16 weights into an SSD's base network, reducing fc6/fc7 as the paper did.

    conv1_1 .. conv5_3 are copied unchanged. The fully connected fc6 (25088 -> 4096, i.e. a
    7x7x512x4096 convolution over pool5) becomes SSD's 3x3 dilated convolution with 1024
    filters by taking every 3rd spatial tap (rows/cols 0, 3, 6) and every 4th filter; fc7
    (4096 -> 4096) becomes a 1x1x1024x1024 convolution with every 4th input and output.

    Args:
        model: an SSD from :func:`build_ssd300` / :func:`build_ssd512` (layers conv1_1 .. fc7).
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


# --------------------------------------------------------------------------- receptive fields
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
        model: a functional Keras model, e.g. from :func:`build_ssd300`.
        layer_names: layers to report; default: :func:`source_layer_names` of the model.

    Returns:
        ``{layer name: ReceptiveField}`` in the order of ``layer_names``.

    Raises:
        ValueError: if a layer on the way has several inputs (not a chain), or the field differs
            between the y and x directions (non-square kernels or padding).

    Example:
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
