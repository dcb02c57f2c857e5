"""Matching results and hard negatives on a photo (notebooks 03 and 04)."""

from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D

from ..boxes import centroids_to_corners
from ..encoder import NEUTRAL, POSITIVE
from .boxes import BoxArtist
from .palette import GT_COLOR, HARD_NEGATIVE_COLOR, MATCH_COLORS, OUTLINE


class MatchArtist:
    """The result of matching drawn on a photo: neutral anchors (thin orange), positive anchors
    (green) and each box's bipartite anchor (thick green, outlined); update with :meth:`set_match`.

    Ground-truth boxes are drawn separately (:func:`draw_boxes`), so they stay fixed.
    """

    def __init__(self, ax):
        self.neutral = BoxArtist(ax, edgecolor=MATCH_COLORS["neutral"], linewidth=0.8, zorder=3)
        self.positive = BoxArtist(ax, edgecolor=MATCH_COLORS["positive"], linewidth=1.0, zorder=4)
        self.bipartite = BoxArtist(ax, edgecolor=MATCH_COLORS["positive"], linewidth=2.5, outline=True, zorder=5)

    def set_match(self, anchors, result, image_width, image_height):
        """Show ``result`` (a :class:`ssd_lib.encoder.MatchResult`) for normalized centroid
        ``anchors`` ``(n, 4)`` on an image of the given size in pixels."""
        corners = centroids_to_corners(anchors) * np.array([image_width, image_height] * 2)
        self.neutral.set_boxes(corners[result.state == NEUTRAL])
        self.positive.set_boxes(corners[result.state == POSITIVE])
        chosen = result.bipartite_anchor_index
        self.bipartite.set_boxes(corners[chosen[chosen >= 0]])
        return self

    def artists(self) -> list:
        """The collections :meth:`set_match` changes (for blitting explorers)."""
        return [self.neutral.collection, self.positive.collection, self.bipartite.collection]


def match_legend(ax, hard_negatives: bool = False, loc="lower left", **kwargs):
    """Legend of the matching colours: ground truth, bipartite match, positive, neutral; with
    ``hard_negatives`` (the loss's view): ground truth, positive, hard negative."""
    if hard_negatives:
        entries = [(GT_COLOR, 2.5, "ground truth"), (MATCH_COLORS["positive"], 1.0, "positive"),
                   (HARD_NEGATIVE_COLOR, 1.0, "hard negative")]  # fmt: skip
    else:
        entries = [(GT_COLOR, 2.5, "ground truth"), (MATCH_COLORS["positive"], 2.5, "bipartite match"),
                   (MATCH_COLORS["positive"], 1.0, "positive"), (MATCH_COLORS["neutral"], 1.0, "neutral")]  # fmt: skip
    handles = [
        Line2D([], [], color=color, linewidth=width, label=label,
               path_effects=OUTLINE if color == GT_COLOR else None)
        for color, width, label in entries
    ]  # fmt: skip
    return ax.legend(handles=handles, loc=loc, fontsize=7, framealpha=0.8, **kwargs)
