"""The names importable from napari_calcite_afm.synthetic before it became a package."""

from __future__ import annotations

import napari_calcite_afm.labels as labels
from napari_calcite_afm import synthetic

OLD_NAMES = [
    "LABEL_MONOLAYER",
    "LABEL_MULTILAYER",
    "LABEL_TERRACE",
    "OBTUSE_TO_ACUTE_VELOCITY",
    "RHOMB_ACUTE_ANGLE_DEG",
    "STEP_HEIGHT_NM",
    "SyntheticSeries",
    "add_artifacts",
    "make_frame",
    "make_frames",
    "make_series",
    "_crystal_axes",  # tests
    "_raw_and_labels",  # the make_frames worker (pickled by name)
]


def test_old_names_still_importable():
    for name in OLD_NAMES:
        assert hasattr(synthetic, name), name
    assert set(synthetic.__all__) <= set(dir(synthetic))
    assert "SeriesParams" in synthetic.__all__


def test_label_values_are_the_shared_ones():
    assert synthetic.LABEL_MULTILAYER == labels.LABEL_MULTILAYER == 1
    assert synthetic.LABEL_TERRACE == labels.LABEL_TERRACE == 2
    assert synthetic.LABEL_MONOLAYER == labels.LABEL_MONOLAYER == 3
    assert synthetic.STEP_HEIGHT_NM == 0.31
