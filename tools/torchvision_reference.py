"""Make the test fixtures that prove ``ssd_lib.pretrained`` equal to torchvision (needs torch).

Run with a Python that has torch and torchvision (never the project's environment: PyTorch is not
a dependency of ssd_lib), from the repository root:

    python3 -m venv /tmp/torch-env
    /tmp/torch-env/bin/pip install torch==2.14.1 torchvision==0.29.1 pillow
    /tmp/torch-env/bin/python tools/torchvision_reference.py

It writes

- ``tests/fixtures/torchvision_ssd300.npz``: a torchvision ``ssd300_vgg16`` (91 classes) whose
  weights come from a numpy seed (:func:`seeded_state_dict`), run on two fixed images
  (:func:`fixture_images`): its class logits and box regression at a few hundred anchors plus
  per-layer summary statistics of all of them, its default boxes, its detections, and its
  ``postprocess_detections`` on synthetic head outputs (:func:`synthetic_head_outputs`);
- ``tests/fixtures/tiny_zip.pth`` and ``tiny_legacy.pth``: a few tensors saved by ``torch.save``
  in its zip and legacy formats (:func:`tiny_checkpoint_contents` says what they hold).

``tests/test_pretrained_torchvision.py`` regenerates the same weights, images and head outputs
with numpy alone (this module's functions above ``main`` import nothing but numpy), converts the
weights with ``ssd_lib.pretrained`` and compares.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
WEIGHTS_SEED = 12
IMAGES_SEED = 7
SYNTHETIC_SEED = 3
N_SAMPLED_ANCHORS = 300
#: Per layer, the standard deviation the class logits and box regression are scaled to.
CLASS_LOGIT_STD = 3.0
BOX_REGRESSION_STD = 0.5


def class_biases(n_outputs=91, seed=WEIGHTS_SEED) -> np.ndarray:
    """``(n_outputs,)`` logit biases like a trained model's: background +6 (it wins almost
    everywhere), three frequent classes, the others rarer and rarer (so that scores are spread
    out and a perturbation of the logits by 1e-5 changes no detection)."""
    biases = np.linspace(-9.0, -1.0, n_outputs - 1, dtype=np.float32)
    biases[-3:] = (2.0, 3.0, 4.0)
    return np.concatenate([[np.float32(6.0)], biases[np.random.default_rng(seed).permutation(n_outputs - 1)]])


def seeded_state_dict(names, shapes, head_scales, seed=WEIGHTS_SEED) -> dict[str, np.ndarray]:
    """A torchvision SSD300 state dict drawn from ``seed``, in PyTorch's layouts.

    Convolution kernels ``(out, in, h, w)`` are He-normal (std ``sqrt(2 / fan_in)``), biases
    normal with std 0.05, the L2-normalisation scale ``20 + 2 * normal``. The head kernels are
    multiplied by ``head_scales[name]`` (chosen by :func:`main` so that every layer's logits and
    regressions have a moderate spread), and :func:`class_biases` are added to the class heads'.
    """
    rng = np.random.default_rng(seed)
    biases = class_biases()
    state = {}
    for name, shape in zip(names, shapes):
        values = rng.standard_normal(tuple(shape), dtype=np.float32)
        if name == "backbone.scale_weight":
            values = 20.0 + 2.0 * values
        elif name.endswith(".weight"):
            values *= np.float32(np.sqrt(2.0 / np.prod(shape[1:])) * head_scales.get(name, 1.0))
        else:
            values *= np.float32(0.05)
            if name.startswith("head.classification_head"):
                values.reshape(-1, len(biases))[:] += biases  # channels: box-major, then class
        state[name] = values.astype(np.float32)
    return state


def fixture_images(seed=IMAGES_SEED) -> np.ndarray:
    """Two ``(300, 300, 3)`` uint8 RGB images: smooth colour fields with a few bright rectangles."""
    rng = np.random.default_rng(seed)
    images = np.empty((2, 300, 300, 3), dtype=np.uint8)
    for index in range(2):
        coarse = rng.uniform(0, 255, (7, 7, 3))
        positions = np.linspace(0, 6, 300)
        low, frac = np.floor(positions).astype(int), positions - np.floor(positions)
        high = np.minimum(low + 1, 6)
        rows = coarse[low] * (1 - frac)[:, None, None] + coarse[high] * frac[:, None, None]
        field = rows[:, low] * (1 - frac)[None, :, None] + rows[:, high] * frac[None, :, None]
        for _ in range(4):
            x0, y0 = rng.integers(0, 240, 2)
            w, h = rng.integers(20, 120, 2)
            field[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 255, 3)
        images[index] = np.clip(np.rint(field), 0, 255).astype(np.uint8)
    return images


def synthetic_head_outputs(n_anchors=8732, n_outputs=91, seed=SYNTHETIC_SEED):
    """``(logits (2, n_anchors, n_outputs), regression (2, n_anchors, 4))`` float32 for the
    post-processing comparison: :func:`class_biases` plus noise, so that many classes have more
    than 400 candidates above 0.01 (``topk_candidates`` matters) and the 200 best are kept."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((2, n_anchors, n_outputs), dtype=np.float32) * np.float32(3.0)
    logits += class_biases(n_outputs, seed)
    regression = rng.standard_normal((2, n_anchors, 4), dtype=np.float32) * np.float32(0.7)
    return logits, regression


def sampled_anchors(n_anchors=8732, count=N_SAMPLED_ANCHORS, seed=WEIGHTS_SEED) -> np.ndarray:
    """Sorted indices of the anchors whose raw outputs the fixture stores (every layer included)."""
    rng = np.random.default_rng(seed)
    layer_ends = np.cumsum([5776, 2166, 600, 150, 36, 4])
    picks = [np.arange(start, end)[rng.permutation(end - start)[: max(4, count // 6)]]
             for start, end in zip(np.concatenate([[0], layer_ends[:-1]]), layer_ends)]  # fmt: skip
    return np.unique(np.concatenate(picks))[:count]


def layer_statistics(values: np.ndarray) -> np.ndarray:
    """``(batch, 6 layers, 4)``: mean, std, min, max of ``values (batch, 8732, k)`` per layer."""
    bounds = np.concatenate([[0], np.cumsum([5776, 2166, 600, 150, 36, 4])])
    stats = [[f(values[:, a:b].reshape(len(values), -1).astype(np.float64), axis=1)
              for f in (np.mean, np.std, np.min, np.max)] for a, b in zip(bounds[:-1], bounds[1:])]  # fmt: skip
    return np.asarray(stats).transpose(2, 0, 1)


def tiny_checkpoint_contents() -> dict:
    """What ``tiny_zip.pth`` and ``tiny_legacy.pth`` hold, as numpy arrays (test expectations)."""
    base = np.arange(12, dtype=np.float32).reshape(3, 4)
    return {
        "conv.weight": np.linspace(-1, 1, 54, dtype=np.float32).reshape(3, 2, 3, 3),
        "conv.bias": np.array([0.5, -0.25, 2.0], dtype=np.float32),
        "transposed": base.T,
        "view": base[1:, 2:],
        "half": np.array([1.5, -2.0], dtype=np.float16),
        "bfloat16": np.array([1.5, -2.0, 3.140625], dtype=np.float32),
        "long": np.array([1, 2, 3], dtype=np.int64),
        "mask": np.array([True, False]),
        "parameter": np.ones(2, dtype=np.float32),
        "scalar": np.array(3.5, dtype=np.float32),
    }


# ---------------------------------------------------------------------------------- needs torch
def _detections(result) -> np.ndarray:
    """torchvision's detections of one image as ``(k, 6)`` rows [label, score, x0, y0, x1, y1]."""
    return np.concatenate([result["labels"][:, None].float().numpy(), result["scores"][:, None].numpy(),
                           result["boxes"].numpy()], axis=1).astype(np.float32)  # fmt: skip


def _padded(detections: list[np.ndarray]) -> np.ndarray:
    out = np.zeros((len(detections), max(len(d) for d in detections), 6), dtype=np.float32)
    for index, rows in enumerate(detections):
        out[index, : len(rows)] = rows
    out[..., 0] = np.where(np.arange(out.shape[1])[None] < np.array([len(d) for d in detections])[:, None],
                           out[..., 0], -1)  # fmt: skip
    return out


def _as_set(detections: np.ndarray) -> np.ndarray:
    """Detections ordered by label, then box: comparable whatever the order of equal scores."""
    return detections[np.lexsort(detections[:, [5, 4, 3, 2, 0]].T)]


def _check_robust(postprocess, logits, regression, noise, seed_name) -> None:
    """Assert that perturbing logits and regression by ``noise`` (relative) keeps the detections:
    the reference must not sit on a tie that float rounding could break either way."""
    rng = np.random.default_rng(0)
    reference = postprocess(logits, regression)
    for _ in range(3):
        noisy = [values * (1 + noise * rng.standard_normal(values.shape, dtype=np.float32))
                 for values in (logits, regression)]  # fmt: skip
        for a, b in zip(reference, postprocess(*noisy)):
            a, b = _as_set(a), _as_set(b)
            assert len(a) == len(b) and np.array_equal(a[:, 0], b[:, 0]) and np.allclose(a[:, 2:], b[:, 2:], atol=0.05), \
                f"outputs within {noise} of a tie: choose another {seed_name}"


def _save_tiny_checkpoints(torch) -> None:
    contents = tiny_checkpoint_contents()
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    conv = torch.nn.Conv2d(2, 3, 3)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(contents["conv.weight"]))
        conv.bias.copy_(torch.from_numpy(contents["conv.bias"]))
    objects = {name: torch.from_numpy(contents[name]) for name in ("half", "long", "mask", "scalar")}
    objects.update({
        "conv": conv.state_dict(),  # an OrderedDict with _metadata, like every state dict
        "transposed": base.t(), "view": base[1:, 2:],  # strided views of one storage
        "bfloat16": torch.from_numpy(contents["bfloat16"]).to(torch.bfloat16),
        "parameter": torch.nn.Parameter(torch.from_numpy(contents["parameter"])),
    })  # fmt: skip
    torch.save(objects, FIXTURES / "tiny_zip.pth")
    torch.save(objects, FIXTURES / "tiny_legacy.pth", _use_new_zipfile_serialization=False)


def main() -> int:
    import torch
    import torchvision
    from torchvision.models.detection import ssd300_vgg16

    torch.set_num_threads(2)
    FIXTURES.mkdir(parents=True, exist_ok=True)
    _save_tiny_checkpoints(torch)

    model = ssd300_vgg16(weights=None, weights_backbone=None, num_classes=91).eval()
    names = list(model.state_dict())
    shapes = [tuple(value.shape) for value in model.state_dict().values()]
    captured = {}
    model.head.register_forward_hook(lambda module, inputs, output: captured.update(head=output))
    model.anchor_generator.register_forward_hook(lambda module, inputs, output: captured.update(anchors=output))
    model.backbone.register_forward_pre_hook(lambda module, inputs: captured.update(input=inputs[0]))
    images = fixture_images()
    tensors = [torch.from_numpy(image).permute(2, 0, 1).float() / 255 for image in images]

    def run(head_scales):
        model.load_state_dict({name: torch.from_numpy(value)
                               for name, value in seeded_state_dict(names, shapes, head_scales).items()})  # fmt: skip
        with torch.no_grad():
            return model(tensors)

    # Pass 1 measures each head's output spread; pass 2 scales the head kernels to the targets.
    run({})
    bounds = np.concatenate([[0], np.cumsum([5776, 2166, 600, 150, 36, 4])])
    head_scales = {}
    for key, prefix, target in (("cls_logits", "head.classification_head", CLASS_LOGIT_STD),
                                ("bbox_regression", "head.regression_head", BOX_REGRESSION_STD)):  # fmt: skip
        values = captured["head"][key].numpy()
        for k in range(6):
            head_scales[f"{prefix}.module_list.{k}.weight"] = float(target / values[:, bounds[k]:bounds[k + 1]].std())
    results = run(head_scales)
    logits, regression = captured["head"]["cls_logits"].numpy(), captured["head"]["bbox_regression"].numpy()
    normalized = (np.stack([t.numpy() for t in tensors]) - np.array([0.48235, 0.45882, 0.40784])[None, :, None, None]) * 255
    resize_error = float(np.abs(captured["input"].numpy() - normalized).max())
    assert resize_error < 1e-3, f"the 300x300 images were changed by torchvision's transform ({resize_error})"
    assert float(np.abs(regression).max()) / 5 < np.log(1000 / 16), "a box regression reaches the coder's clamp"

    # Post-processing alone, on synthetic head outputs; a perturbation of 1e-5 (relative) must not
    # change its result (so that float rounding in our decoder cannot either).
    synthetic_logits, synthetic_regression = synthetic_head_outputs()
    anchors = captured["anchors"]
    sizes = [(300, 300)] * 2

    def postprocess(cls_logits, bbox_regression):
        head = {"cls_logits": torch.from_numpy(cls_logits), "bbox_regression": torch.from_numpy(bbox_regression)}
        return [_detections(r) for r in model.postprocess_detections(head, anchors, sizes)]

    synthetic = postprocess(synthetic_logits, synthetic_regression)
    _check_robust(postprocess, synthetic_logits, synthetic_regression, 1e-5, "SYNTHETIC_SEED")
    _check_robust(postprocess, logits, regression, 1e-5, "WEIGHTS_SEED")
    probabilities = torch.softmax(torch.from_numpy(synthetic_logits), -1).numpy()
    per_class = (probabilities[..., 1:] > 0.01).sum(axis=1)
    print(f"synthetic: candidates per class: max {per_class.max()}, classes above 400: "
          f"{(per_class > 400).sum(axis=1).tolist()}, detections {[len(d) for d in synthetic]}")

    detections = [_detections(result) for result in results]
    print(f"model: detections {[len(d) for d in detections]}, logits std {logits.std():.3f}, "
          f"regression max |value| {np.abs(regression).max():.3f}")
    sample = sampled_anchors()
    np.savez_compressed(
        FIXTURES / "torchvision_ssd300.npz",
        versions=np.array([f"torch {torch.__version__}", f"torchvision {torchvision.__version__}",
                           f"numpy {np.__version__}"]),  # fmt: skip
        names=np.array(names), shapes=np.array([list(s) + [1] * (4 - len(s)) for s in shapes]),
        ranks=np.array([len(s) for s in shapes]),
        head_scale_names=np.array(list(head_scales)), head_scale_values=np.array(list(head_scales.values())),
        weights_checksum=np.array([float(np.sum(v, dtype=np.float64))
                                   for v in seeded_state_dict(names, shapes, head_scales).values()]),
        images_checksum=np.array(images.sum(dtype=np.int64)),
        default_boxes=anchors[0].numpy(),  # (8732, 4) pixel corners in the 300x300 input
        sampled_anchors=sample,
        sampled_logits=logits[:, sample], sampled_regression=regression[:, sample],
        logits_statistics=layer_statistics(logits), regression_statistics=layer_statistics(regression),
        detections=_padded(detections), synthetic_detections=_padded(synthetic),
    )  # fmt: skip
    size = sum(path.stat().st_size for path in FIXTURES.glob("*") if path.name.startswith(("torchvision", "tiny")))
    print(f"wrote {FIXTURES} ({size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
