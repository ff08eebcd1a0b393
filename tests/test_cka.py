"""Linear CKA (analysis/cka.py) and the layers analysis's slope over depth (issue 28 item 2)."""

from __future__ import annotations

import pytest
import torch

from bertviz_landscape.analysis.layers import depth_slope
from bertviz_landscape.analysis.measures.cka import linear_cka


def test_cka_of_a_layer_with_itself_is_one_and_invariant_to_rotation_and_scaling():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 32, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(32, 32, generator=g, dtype=torch.float64))
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-12)
    assert linear_cka(x, x.double() @ q) == pytest.approx(1.0, abs=1e-10)  # an orthogonal rotation
    assert linear_cka(x, 7.5 * x) == pytest.approx(1.0, abs=1e-12)  # isotropic scaling
    y = torch.randn(200, 32, generator=g, dtype=torch.float64)
    assert linear_cka(x, y) == pytest.approx(linear_cka(x.double() @ q, 3.0 * y), abs=1e-10)
    # not a constant: unrelated features are far from 1, a partial mix lies between
    assert linear_cka(x, y) < 0.3
    assert linear_cka(x, y) < linear_cka(x, x + 0.5 * y) < 1.0
    # an anisotropic rescaling of the features is a different representation
    assert linear_cka(x, x * torch.linspace(0.1, 10, 32, dtype=torch.float64)) < 0.99


def test_depth_slope_is_the_least_squares_slope():
    assert depth_slope([0, 1, 2, 3], [0.0, 0.1, 0.2, 0.3]) == pytest.approx(0.1)
    assert depth_slope([0, 1, 2, 3], [1.0, None, 0.0, -1.0]) == pytest.approx(-9.0 / 14.0)  # None skipped
    assert depth_slope([0, 1], [0.0, 1.0]) is None
