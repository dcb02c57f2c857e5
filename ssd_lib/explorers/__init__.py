"""The notebooks' interactive explorers (ipywidgets), one module per notebook.

=========================================  ==========================================
notebook                                   explorer
=========================================  ==========================================
01_anchor_scales                           :mod:`.anchor_scales` ``AnchorScaleExplorer``
02_anchor_grids                            :mod:`.anchor_grids` ``AnchorGridExplorer``
03_encoder                                 :mod:`.matching` ``MatchingExplorer``
04_loss                                    :mod:`.loss` ``LossExplorer``
05_decoder                                 :mod:`.decoder` ``DecoderExplorer``
06_model                                   :mod:`.model` ``ModelExplorer``
07_data_pipeline                           :mod:`.augmentation` ``AugmentationExplorer``
08_train_ssd300                            :mod:`.training` ``TrainingCurvesExplorer``
=========================================  ==========================================

Every explorer is an :class:`~ssd_lib.explorers.base.Explorer` (:mod:`.base`): a ``VBox``
holding its controls (sliders, toggles), an ``ipywidgets.Image`` that shows a matplotlib
figure rendered to PNG or JPEG, and an ``Output`` that shows errors raised while updating.
The figure's artists are made once; ``update()`` changes them in place and re-renders, so a
slider move costs one Agg render (tens of milliseconds), not a new figure. Import an explorer
from its module: ``from ssd_lib.explorers.anchor_scales import AnchorScaleExplorer``.
"""
