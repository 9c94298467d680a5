"""GSG result objects: densities of a GSGParams, JSON, the better-model rule."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from napari_calcite_afm.stats import GSGParams, StatsError, better_model


def test_params_evaluate_their_densities_with_steps():
    p = GSGParams(1.5, 0.02, 0.0, rho={1: 0.9}, step_fraction={1: 0.1}, step_height=0.31)
    w, m, _ = p.increment_components(1)
    assert abs(w.sum() - 1) < 1e-12 and sorted(m[-2:]) == [-0.31, 0.31]
    assert w[-2:].tolist() == pytest.approx([0.05, 0.05])
    d = np.linspace(-1, 1, 200_001)
    assert abs(p.increment_pdf(d, 1).sum() * 1e-5 - 1) < 1e-3
    assert float(p.increment_cdf(0.2, 1)) == pytest.approx(0.95, abs=1e-3)
    with pytest.raises(StatsError, match="lag 2"):
        p.increment_components(2)


def test_undefined_params_give_nan_densities_and_json():
    p = GSGParams(math.nan, math.nan, 1.0, rho={1: math.nan}, flags=["GSG undefined: x"])
    assert not p.defined
    assert np.isnan(p.pdf([0.0, 1.0])).all() and np.isnan(p.increment_cdf([0.0], 1)).all()
    d = p.to_dict()
    json.dumps(d)  # NaN is allowed by json.dumps
    assert d["rho"] == {"1": d["rho"]["1"]} and d["flags"] == ["GSG undefined: x"]


@pytest.mark.parametrize(
    ("gauss", "gsg", "better"),
    [(0.2, 0.05, "gsg"), (0.05, 0.2, "gaussian"), (0.1, 0.1, "gaussian"),
     (math.nan, 0.1, "gsg"), (0.1, math.nan, "gaussian"), (math.nan, math.nan, "")],
)  # fmt: skip
def test_better_model(gauss, gsg, better):
    assert better_model(gauss, gsg) == better
