"""The course's colours: each colour means one thing, in every figure of every notebook.

=================================================  ===========================================
meaning                                            colour
=================================================  ===========================================
ground truth                                       white with a black outline (:data:`GT_COLOR`)
matched to a ground-truth box: a positive anchor,  green (``MATCH_COLORS["positive"]``)
a true positive, a box some anchor covers
neither: a neutral anchor, a detection of a        orange (``MATCH_COLORS["neutral"]``)
"difficult" box the evaluation ignores
background anchor                                  grey (``MATCH_COLORS["background"]``)
hard negative (a background anchor the loss keeps) magenta (:data:`HARD_NEGATIVE_COLOR`)
an error: a false positive, a box no anchor        red (:data:`ERROR_COLOR`)
covers, an invalid setting
a guide: cell centres, the cell or the receptive   black with a white outline, dashed for
field looked at                                    regions (:data:`HIGHLIGHT_COLOR`)
an anchor's aspect ratio                           cyan (tall) - blue (square) - violet (wide)
                                                   (:func:`aspect_ratio_color`)
a detection's class                                yellow, sienna, olive, pink, repeating
                                                   (:func:`class_color`)
=================================================  ===========================================

No colour of one row appears in another, so a reader who has learnt "green = matched" in
notebook 03 reads it in notebook 05 without a legend. Lines of plain plots (a loss curve, a
learning rate) carry no meaning from this table.
"""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib import patheffects
from matplotlib.colors import LinearSegmentedColormap

GT_COLOR = "white"
MATCH_COLORS = {"positive": "#2ca02c", "neutral": "#ff7f0e", "background": "#8c8c8c"}
HARD_NEGATIVE_COLOR = "#e7298a"
ERROR_COLOR = "#d62728"
HIGHLIGHT_COLOR = "black"
#: Colours of a detection's outcome in the VOC evaluation (notebook 05): the meanings above.
OUTCOME_COLORS = {"true positive": MATCH_COLORS["positive"], "false positive": ERROR_COLOR,
                  "ignored": MATCH_COLORS["neutral"]}  # fmt: skip
#: Class colours, repeated for classes beyond the fourth (boxes also carry the class name).
CLASS_COLORS = ("#ffd92f", "#a0522d", "#9a9a1a", "#f7a8d0")


def outline(color="black") -> list:
    """Path effects that draw a line over a wider line of ``color`` (an outline that keeps light
    lines visible on light photos, dark lines on dark ones)."""
    return [patheffects.Stroke(linewidth=3.5, foreground=color), patheffects.Normal()]


#: The outline of ground truth (and of light lines on photos); highlights have a white one.
OUTLINE = outline("black")

#: Aspect ratios at the two ends of the colour scale (and beyond): 1/3 and 3.
_RATIO_RANGE = 3.0
#: Colour stops at r = 1/3, 1/2, 1, 2, 3 (SSD's ratios), placed on the log scale of
#: :func:`aspect_ratio_color` so that each of them gets a colour of its own.
_RATIO_STOPS = [(1 / 3, "#00c8d2"), (1 / 2, "#2e9bff"), (1.0, "#2450d8"), (2.0, "#7c4ddf"), (3.0, "#b03fd0")]
_RATIO_CMAP = LinearSegmentedColormap.from_list(
    "aspect_ratio", [(0.5 + np.log(r) / (2 * np.log(_RATIO_RANGE)), color) for r, color in _RATIO_STOPS]
)


def aspect_ratio_color(aspect_ratio):
    """RGBA colour of an aspect ratio ``r = w / h``: cyan for tall (r <= 1/3), blue for square,
    violet for wide (r >= 3).

    Uses ``log(r)`` on a symmetric scale, so r and 1/r are equally far from the middle.
    Accepts a scalar or an array (returns ``(..., 4)``).
    """
    position = 0.5 + np.log(np.asarray(aspect_ratio, dtype=float)) / (2 * np.log(_RATIO_RANGE))
    return _RATIO_CMAP(np.clip(position, 0.0, 1.0))


def class_color(class_id):
    """RGBA colour of a class id (1..n; 0 = background is grey); scalar or array."""
    class_id = np.asarray(class_id, dtype=int)
    palette = matplotlib.colors.to_rgba_array(CLASS_COLORS)  # (4, 4)
    colors = palette[(class_id - 1) % len(CLASS_COLORS)]
    return np.where((class_id == 0)[..., None], matplotlib.colors.to_rgba(MATCH_COLORS["background"]), colors)
