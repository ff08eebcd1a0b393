"""bertviz_landscape.algebra against an independent computation: numpy float64 on the flattened
vector (the names concatenated in sorted order); and the summation order it documents."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from bertviz_landscape import algebra

SHAPES = {
    f"p{i:02d}.{kind}": shape
    for i, (kind, shape) in enumerate(
        [("weight", (7, 5)), ("bias", (7,)), ("weight", (3, 4, 2)), ("scale", ()), ("weight", (33,))] * 4
    )
}


def vector(seed: int, dtype=torch.float32, spread: bool = True) -> dict[str, torch.Tensor]:
    """Tensors of mixed shapes, in insertion order p00, p01, …; `spread`: magnitudes over 12 decades,
    so the order of the per-name sums changes their rounding."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for i, (n, shape) in enumerate(SHAPES.items()):
        scale = 10.0 ** ((i * 7) % 13 - 6) if spread else 1.0
        out[n] = (torch.randn(shape, generator=g, dtype=torch.float64) * scale).to(dtype)
    return out


def flat(v: dict, names=None) -> np.ndarray:
    names = sorted(v) if names is None else names
    return np.concatenate([v[n].double().numpy().reshape(-1) for n in names])


def shuffled(v: dict, seed: int) -> dict:
    keys = list(v)
    random.Random(seed).shuffle(keys)
    return {k: v[k] for k in keys}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.float64])
def test_dot_norm_cosine_match_numpy_float64(dtype):
    a, b = vector(0, dtype, spread=dtype != torch.float16), vector(1, dtype, spread=dtype != torch.float16)
    fa, fb = flat(a), flat(b)
    assert algebra.dot(a, b) == pytest.approx(float(fa @ fb), rel=1e-12, abs=1e-300)
    assert algebra.norm(a) == pytest.approx(float(np.sqrt(fa @ fa)), rel=1e-12)
    assert algebra.cosine(a, b) == pytest.approx(
        float(fa @ fb / np.sqrt(fa @ fa) / np.sqrt(fb @ fb)), rel=1e-10, abs=1e-15
    )
    assert math.isnan(algebra.cosine(a, {n: torch.zeros_like(t) for n, t in b.items()}))


def test_float32_vectors_accumulate_in_float64():
    """Entries of 1 and 1e-8: a float32 accumulation loses the small ones, float64 keeps them."""
    a = {"w": torch.cat([torch.ones(1), torch.full((100_000,), 1e-4)]).float()}
    exact = 1.0 + 100_000 * float(np.float32(1e-4)) ** 2
    assert algebra.dot(a, a) == pytest.approx(exact, rel=1e-12)
    assert algebra.norm(a) ** 2 == pytest.approx(exact, rel=1e-12)


def test_results_do_not_depend_on_dict_insertion_order():
    a, b = vector(2), vector(3)
    # the precondition: summing the per-name terms in these orders gives other bits than sorted
    terms = {n: float(torch.sum(a[n].double() * b[n].double())) for n in a}
    in_sorted = sum(terms[n] for n in sorted(terms))
    seeds = [s for s in range(50) if sum(terms[n] for n in shuffled(terms, s)) != in_sorted]
    assert seeds
    assert algebra.dot(a, b) == in_sorted  # the documented order, bit for bit
    for seed in seeds:
        sa, sb = shuffled(a, seed), shuffled(b, seed)
        assert algebra.dot(sa, sb) == algebra.dot(a, b)
        assert algebra.norm(sa) == algebra.norm(a)
        assert algebra.cosine(sb, sa) == algebra.cosine(a, b)
        assert np.array_equal(algebra.gram([sa, sb]), algebra.gram([a, b]))
        assert algebra.plane_products(sa, sb, a, origin=shuffled(b, seed)) == algebra.plane_products(
            a, b, a, origin=b
        )


def test_a_small_tensors_term_is_torch_sum_of_the_float64_product():
    a, b = vector(4), vector(5)
    for n in a:
        assert algebra.dot({n: a[n]}, {n: b[n]}) == float(torch.sum(a[n].double() * b[n].double()))


def test_chunked_products_equal_unchunked_ones_within_rounding():
    a, b, o = vector(6, spread=False), vector(7, spread=False), vector(8, spread=False)
    whole = algebra.plane_products(a, b, None, origin=o)
    for chunk in (1, 5, 64):
        parts = algebra.plane_products(a, b, None, origin=o, chunk=chunk)
        assert parts[0] == pytest.approx(whole[0], rel=1e-12) and parts[1] is None
        assert parts[2] == pytest.approx(whole[2], rel=1e-12)


def test_products_run_over_the_common_names():
    a, b = vector(9), vector(10)
    extra_a = a | {"only_in_a": torch.ones(4)}
    extra_b = {n: t for n, t in b.items() if n != "p03.scale"} | {"only_in_b": torch.ones(4)}
    common = sorted(set(extra_a) & set(extra_b))
    assert algebra.names(extra_a, extra_b) == common
    assert algebra.dot(extra_a, extra_b) == pytest.approx(
        float(flat(extra_a, common) @ flat(extra_b, common)), rel=1e-12
    )
    with pytest.raises(ValueError, match="elements"):
        algebra.dot({"w": torch.ones(3)}, {"w": torch.ones(4)})


def test_gram_matches_numpy_and_is_symmetric():
    vs = [vector(s, spread=False) for s in range(4)]
    X = np.stack([flat(v) for v in vs])
    g = algebra.gram(vs)
    np.testing.assert_allclose(g, X @ X.T, rtol=1e-12)
    assert np.array_equal(g, g.T)
    assert g[1, 2] == algebra.dot(vs[1], vs[2]) and g[3, 3] == algebra.dot(vs[3], vs[3])


def test_plane_products_and_coordinates_match_numpy():
    x, y, r, origin = (vector(s, torch.float64, spread=False) for s in (11, 12, 13, 14))
    fx, fy, fo = flat(x), flat(y), flat(origin)
    # r orthogonal to the plane (numpy Gram–Schmidt), then v = origin + 0.3·x − 1.7·y + r
    basis = np.linalg.qr(np.stack([fx, fy], axis=1))[0]
    fr = flat(r) - basis @ (basis.T @ flat(r))
    fr *= 0.1 * np.linalg.norm(fx) / np.linalg.norm(fr)
    fv = fo + 0.3 * fx - 1.7 * fy + fr
    v, offset = {}, 0
    for n in sorted(x):
        v[n] = torch.from_numpy(fv[offset : offset + x[n].numel()].reshape(x[n].shape).copy())
        offset += x[n].numel()
    fu = fv - fo
    vx, vy, vv = algebra.plane_products(v, x, y, origin)
    assert (vx, vy, vv) == pytest.approx((fu @ fx, fu @ fy, fu @ fu), rel=1e-12)
    p = algebra.project(v, x, y, origin)
    assert p["lstsq"] == pytest.approx([0.3, -1.7], rel=1e-9)
    assert p["alpha"] == pytest.approx(fu @ fx / (fx @ fx), rel=1e-12)
    assert p["beta"] == pytest.approx(math.sqrt(fu @ fu / (fx @ fx) - p["alpha"] ** 2), rel=1e-9)
    assert p["distance_from_plane"] == pytest.approx(np.linalg.norm(fr) / np.linalg.norm(fu), rel=1e-6)
    assert p["norm_v"] == pytest.approx(np.linalg.norm(fu), rel=1e-12)
    one = algebra.project(v, x, None, origin)  # δ1 only
    assert one["lstsq"] == [one["alpha"], None]
    assert one["distance_from_plane"] == pytest.approx(
        np.linalg.norm(fu - one["alpha"] * fx) / np.linalg.norm(fu), rel=1e-9
    )
    on_axis = algebra.project(x, x, y)  # δ1 itself: (1, 0) exactly, in the plane
    assert (on_axis["alpha"], on_axis["beta"]) == (1.0, 0.0)
    zero = algebra.project({n: torch.zeros_like(t) for n, t in x.items()}, x, y)
    assert zero["distance_from_plane"] == 0.0 and zero["norm_v"] == 0.0


def test_pca_matches_numpy_svd_of_the_centred_points():
    g = torch.Generator().manual_seed(15)
    points = [
        {"a": torch.randn(6, 4, generator=g) * (t + 1), "b": torch.randn(9, generator=g)} for t in range(5)
    ]
    X = np.stack([flat(p) for p in points])
    Xc = X - X.mean(axis=0)
    U, S, _ = np.linalg.svd(Xc, full_matrices=False)
    out = algebra.pca(points, components=2)
    lam = S[:2] ** 2
    np.testing.assert_allclose(out["explained_variance"], lam / (len(points) - 1), rtol=1e-10)
    np.testing.assert_allclose(out["explained_variance_ratio"], lam / (S**2).sum(), rtol=1e-10)
    np.testing.assert_allclose(out["singular_values"], S[:2], rtol=1e-10)
    expected = U[:, :2] * S[:2]
    expected *= np.where(expected[-1] < 0, -1.0, 1.0)  # the sign: the last point's coordinate ≥ 0
    np.testing.assert_allclose(out["coordinates"], expected, rtol=1e-8, atol=1e-10)
    assert out["num_snapshots"] == 5
    assert len(algebra.pca(points, components=9)["singular_values"]) == 4  # at most T − 1
