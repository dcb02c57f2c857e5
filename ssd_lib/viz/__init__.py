"""Drawing boxes, anchors, images and plots with matplotlib; the same colours in every notebook.

One module per concept; the notebook that explains it in brackets:

- :mod:`~ssd_lib.viz.palette`: the course's colours, one meaning each (all notebooks);
- :mod:`~ssd_lib.viz.figures`: making and rendering figures, showing photos (all notebooks);
- :mod:`~ssd_lib.viz.boxes`: boxes on an image, :class:`BoxArtist` (all notebooks);
- :mod:`~ssd_lib.viz.anchors`: anchor shapes, anchor coverage, cell centres (01, 02);
- :mod:`~ssd_lib.viz.matching`: matching results and hard negatives (03, 04);
- :mod:`~ssd_lib.viz.detections`: detections, score maps, precision-recall (05; detections on photos: 00, 08);
- :mod:`~ssd_lib.viz.model`: receptive fields and feature maps (06);
- :mod:`~ssd_lib.viz.samples`: augmented samples, dataset box statistics (07);
- :mod:`~ssd_lib.viz.training`: training curves (08);
- :mod:`~ssd_lib.viz.pipeline`: the whole SSD pipeline as one diagram (00).

Every public name is also here, so ``from ssd_lib import viz; viz.draw_boxes(...)`` works.
Functions draw into a given ``Axes`` and return the artists they made, so explorers
(:mod:`ssd_lib.explorers`) can update them in place instead of redrawing the figure.
"""

from .anchors import (
    EXTRA_BOX_LABEL,
    CellCentersArtist,
    CellShapesArtist,
    CoverageArtist,
    aspect_ratio_legend,
    cell_box_labels,
    cell_shapes_labels,
    draw_cell_centers,
    draw_cell_shapes,
    ratio_label,
)
from .boxes import BoxArtist, BoxLabels, draw_anchors, draw_boxes, draw_highlight
from .detections import (
    DetectionArtist,
    detection_labels,
    draw_detections,
    draw_precision_recall,
    show_detection_row,
    show_detections,
    show_score_map,
)
from .figures import BlitRenderer, PixelImage, encode_canvas, figure_message, figure_to_png, new_figure, show_image
from .matching import MATCH_FADE, MATCH_LEGEND, MATCH_STYLES, MatchArtist, hard_negative_artist, match_legend, positive_artist
from .model import FeatureMapArtist, draw_receptive_fields_vs_anchors
from .palette import (
    CLASS_COLORS,
    ERROR_COLOR,
    GT_COLOR,
    HARD_NEGATIVE_COLOR,
    HIGHLIGHT_COLOR,
    MATCH_COLORS,
    OUTCOME_COLORS,
    OUTLINE,
    aspect_ratio_color,
    class_color,
    outline,
)
from .pipeline import draw_ssd_pipeline
from .samples import SampleArtist, box_scale_histogram, draw_samples
from .training import TrainingCurvesArtist, smooth_curve

__all__ = [
    # palette
    "GT_COLOR",
    "MATCH_COLORS",
    "HARD_NEGATIVE_COLOR",
    "OUTCOME_COLORS",
    "ERROR_COLOR",
    "HIGHLIGHT_COLOR",
    "CLASS_COLORS",
    "OUTLINE",
    "outline",
    "aspect_ratio_color",
    "class_color",
    # figures
    "new_figure",
    "figure_to_png",
    "encode_canvas",
    "show_image",
    "figure_message",
    "BlitRenderer",
    "PixelImage",
    # boxes
    "BoxArtist",
    "BoxLabels",
    "draw_boxes",
    "draw_anchors",
    "draw_highlight",
    # anchors
    "ratio_label",
    "EXTRA_BOX_LABEL",
    "cell_box_labels",
    "aspect_ratio_legend",
    "CellShapesArtist",
    "cell_shapes_labels",
    "draw_cell_shapes",
    "CoverageArtist",
    "CellCentersArtist",
    "draw_cell_centers",
    # matching
    "MATCH_STYLES",
    "MATCH_LEGEND",
    "MATCH_FADE",
    "MatchArtist",
    "positive_artist",
    "hard_negative_artist",
    "match_legend",
    # detections
    "detection_labels",
    "DetectionArtist",
    "draw_detections",
    "show_detections",
    "show_detection_row",
    "show_score_map",
    "draw_precision_recall",
    # model
    "FeatureMapArtist",
    "draw_receptive_fields_vs_anchors",
    # samples
    "SampleArtist",
    "draw_samples",
    "box_scale_histogram",
    # training
    "smooth_curve",
    "TrainingCurvesArtist",
    # pipeline
    "draw_ssd_pipeline",
]
