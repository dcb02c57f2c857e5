"""Matching results and hard negatives on a photo (notebooks 03 and 04)."""

from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D

from ..boxes import centroids_to_corners
from ..matching import NEUTRAL, POSITIVE
from .boxes import BoxArtist
from .palette import GT_COLOR, HARD_NEGATIVE_COLOR, MATCH_COLORS, OUTLINE


#: Line style of each kind of box a matching figure draws: colour, width in points, outline.
MATCH_STYLES = {
    "ground truth": (GT_COLOR, 2.5, OUTLINE),
    "bipartite match": (MATCH_COLORS["positive"], 2.5, OUTLINE),
    "positive": (MATCH_COLORS["positive"], 1.2, None),
    "neutral": (MATCH_COLORS["neutral"], 0.7, None),
    "hard negative": (HARD_NEGATIVE_COLOR, 1.0, None),
}
#: The legend entries of a matching figure.
MATCH_LEGEND = ("ground truth", "bipartite match", "positive", "neutral")
#: How much matching figures fade their photo (``show_image(..., fade=MATCH_FADE)``), so that
#: hundreds of thin anchor boxes stay readable on it.
MATCH_FADE = 0.45


class MatchArtist:
    """The result of matching drawn on a photo: neutral anchors (thin, translucent orange, so
    that hundreds of them leave the photo readable), positive anchors (green) and each box's
    bipartite anchor (thick green, outlined); update with :meth:`set_match`.

    Ground-truth boxes are drawn separately (:func:`draw_boxes`), so they stay fixed.
    """

    #: Opacity of the neutral anchors.
    NEUTRAL_ALPHA = 0.55

    def __init__(self, ax):
        self.neutral = _box_artist(ax, "neutral", alpha=self.NEUTRAL_ALPHA, zorder=3)
        self.positive = _box_artist(ax, "positive", zorder=4)
        self.bipartite = _box_artist(ax, "bipartite match", zorder=5)

    def set_match(self, anchors, result, image_width, image_height):
        """Show ``result`` (a :class:`ssd_lib.matching.MatchResult`) for normalized centroid
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


def _box_artist(ax, kind: str, **kwargs) -> BoxArtist:
    color, width, effects = MATCH_STYLES[kind]
    artist = BoxArtist(ax, edgecolor=color, linewidth=width, **kwargs)
    artist.collection.set_path_effects(effects or [])
    return artist


def hard_negative_artist(ax, zorder: float = 3) -> BoxArtist:
    """A :class:`BoxArtist` in the style of hard negatives (notebook 04)."""
    return _box_artist(ax, "hard negative", zorder=zorder)


def positive_artist(ax, zorder: float = 4) -> BoxArtist:
    """A :class:`BoxArtist` in the style of positive anchors."""
    return _box_artist(ax, "positive", zorder=zorder)


def match_legend(target, entries=MATCH_LEGEND, loc="lower left", **kwargs):
    """Legend of the matching styles named in ``entries`` (keys of :data:`MATCH_STYLES`) on an
    axes or, below the panels with ``loc="outside lower center"``, on a figure. It is drawn
    above every box, so box edges never cross it."""
    handles = []
    for label in entries:
        color, width, effects = MATCH_STYLES[label]
        handles.append(Line2D([], [], color=color, linewidth=width, label=label, path_effects=effects))
    legend = target.legend(handles=handles, loc=loc, fontsize=8, framealpha=0.9, **kwargs)
    legend.set_zorder(10)
    return legend
