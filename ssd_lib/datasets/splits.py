"""The training and validation splits of a dataset folder, found by its layout."""

from __future__ import annotations

from pathlib import Path

from ssd_lib.datasets.voc import parse_voc

__all__ = ["load_splits"]


def load_splits(data_dir, class_names) -> tuple[list, list]:
    """Training and validation records of a dataset folder, found by its layout.

    - the shapes dataset (``shapes.json``): image sets ``train`` and ``val``;
    - a ``VOCdevkit`` folder: VOC2007 + VOC2012 ``trainval`` for training (whichever exist) and
      VOC2007 ``test`` for validation (the paper's "07+12" setting);
    - one VOC-format folder (``Annotations/``, ``ImageSets/Main/``): ``trainval`` or ``train``,
      and ``test`` or ``val``.

    Raises:
        ValueError: none of these layouts (names the folder and what was looked for).
    """
    data_dir = Path(data_dir)
    if (data_dir / "shapes.json").exists():
        return parse_voc(data_dir, "train", class_names), parse_voc(data_dir, "val", class_names)
    years = [data_dir / name for name in ("VOC2007", "VOC2012") if (data_dir / name / "Annotations").is_dir()]
    if years:
        test_root = data_dir / "VOC2007"
        if not (test_root / "ImageSets" / "Main" / "test.txt").exists():
            raise ValueError(f"load_splits: {test_root} has no ImageSets/Main/test.txt (download voc2007test)")
        return parse_voc(years, "trainval", class_names), parse_voc(test_root, "test", class_names)
    sets = data_dir / "ImageSets" / "Main"
    if (data_dir / "Annotations").is_dir() and sets.is_dir():
        train_set = "trainval" if (sets / "trainval.txt").exists() and (sets / "test.txt").exists() else "train"
        val_set = "test" if train_set == "trainval" else "val"
        return parse_voc(data_dir, train_set, class_names), parse_voc(data_dir, val_set, class_names)
    raise ValueError(
        f"load_splits: {data_dir} is neither the shapes dataset (shapes.json), a VOCdevkit folder "
        "(VOC2007/, VOC2012/) nor a VOC-format folder (Annotations/, ImageSets/Main/)"
    )
