"""The course's colours, shared by every figure of every notebook.

- ground truth: white with a black outline (:data:`GT_COLOR`, :data:`OUTLINE`);
- anchors: coloured by aspect ratio (:func:`aspect_ratio_color`);
- matching: positive / neutral / background anchors in :data:`MATCH_COLORS`;
- the loss: hard negatives in :data:`HARD_NEGATIVE_COLOR`;
- evaluation: a detection's outcome in :data:`OUTCOME_COLORS`;
- detections: coloured by class (:func:`class_color`).
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib import patheffects

GT_COLOR = "white"
MATCH_COLORS = {"positive": "#2ca02c", "neutral": "#ff7f0e", "background": "#7f7f7f"}
#: Colour of the hard negatives the loss keeps (notebook 04).
HARD_NEGATIVE_COLOR = "#d62728"
#: Colours of a detection's outcome in the VOC evaluation (notebook 05).
OUTCOME_COLORS = {"true positive": "#2ca02c", "false positive": "#d62728", "ignored": "#ff7f0e"}
#: Path effects of a line drawn with a black outline (ground truth on photos).
OUTLINE = [patheffects.Stroke(linewidth=3.5, foreground="black"), patheffects.Normal()]
_RATIO_CMAP = matplotlib.colormaps["coolwarm"]
_CLASS_CMAP = matplotlib.colormaps["tab20"]


def aspect_ratio_color(aspect_ratio):
    """RGBA colour of an aspect ratio: blue for tall (r < 1), grey-white for 1, red for wide.

    Uses ``log(r)`` on a symmetric scale, so r and 1/r are equally far from the middle.
    Accepts a scalar or an array (returns ``(..., 4)``).
    """
    position = 0.5 + np.log(np.asarray(aspect_ratio, dtype=float)) / (2 * np.log(4.0))
    return _RATIO_CMAP(np.clip(position, 0.0, 1.0))


def class_color(class_id):
    """RGBA colour of a class id (0 = background is grey); scalar or array."""
    class_id = np.asarray(class_id, dtype=int)
    colors = np.asarray(_CLASS_CMAP(((class_id - 1) * 2) % 20 + ((class_id - 1) // 10) % 2))
    return np.where((class_id == 0)[..., None], matplotlib.colors.to_rgba("#7f7f7f"), colors)
