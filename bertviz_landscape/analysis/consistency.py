"""`analysis=consistency`: how well the training-loss landscape predicts the dev-error landscape.

The paper's claim (Hao et al. §4): for fine-tuning, the training-loss surface and the
generalisation-error surface agree; from scratch, less so. As numbers, over the grid points of
one surface (1D or 2D) where both arrays are finite:

- ``spearman``, ``spearman_pvalue``: Spearman's rank correlation of `train_key` and `dev_key`
  (scipy.stats.spearmanr); null when either is constant over the points (e.g. a dev error
  stuck at the majority-class plateau: then it has no ranking to predict);
- ``iou``: for each q in `quantiles` (percent), the intersection over union of the lowest-q%
  regions of the two arrays, a region being the points at or below the array's q-th percentile
  (ties included, so a region can hold more than q% of the points; its size is reported in
  ``region_fraction``).

- ``minima``: where each array is lowest on the grid (ties — a dev error flat at its minimum over
  several points — give the mean position of the tied points), and ``minima_distance`` between
  the two: in grid units (Δα, Δβ of the surface's axes), in parameter distance
  ‖Δα·δ1 + Δβ·δ2‖ = sqrt(Δα²‖δ1‖² + Δβ²‖δ2‖² + 2ΔαΔβ‖δ1‖‖δ2‖cos∠(δ1, δ2)) and in units of ‖δ1‖.

One surface per run (several seeds: `surfaces=[...]`); the runs come from `runs=` or from what
the surface's meta records (runs.run).

- ``bootstrap`` (when the surface stores per-example values: landscape ``per_example=true``, the
  surface's ``per_example`` group): the noise of these three numbers over the examples. Each of
  `bootstrap.samples` replicates resamples the train examples and, independently, the dev
  examples with replacement (the same resample at every grid point: the points share their
  examples), recomputes J (mean per-example loss) and the dev error (1 − the mean 0/1
  correctness; needs accuracy as the primary metric, or `dev_key=dev_loss`) at every point, and
  the three numbers on the resampled surfaces; the standard error is their standard deviation
  (ddof = 1) over the replicates where they are defined, with the 2.5/97.5 percentiles. The grid
  points are not independent samples, so no standard error is computed from their count.

- ``regret``: the dev error at the training loss's grid minimum minus the grid's lowest dev error
  (what picking the point by training loss costs on dev; 0 when the minima coincide). Both it and
  the minima distance are minima of noisy surfaces, biased upward by the noise even where the true
  minima coincide; the per-example bootstrap enters the decision through Efron's bias correction,
  ``regret_debiased`` = max(0, 2·regret − mean over the replicates) (likewise ``minima_distance_debiased``),
  the registered metric, compared across runs by the exact permutation test (the runs' spread, not
  the bootstrap s.e., is the comparison's noise).

``numbers`` (per run): ``regret``, ``regret_debiased``, ``regret_boot_se``,
``minima_distance_debiased``, ``spearman_train_dev`` (ρ above), ``iou`` (at the quantile
`analysis.iou_quantile`, fixed in the config), ``iou_<q>`` for every q, ``minima_distance`` (units of
‖δ1‖), ``minima_distance_abs`` (parameter distance), ``n_points``; with the bootstrap
``spearman_train_dev_boot_se``, ``iou_boot_se``, ``minima_distance_boot_se`` and
``bootstrap_samples`` (replicates drawn; null without per-example values).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence

import numpy as np

from bertviz_landscape.analysis.common import (
    AnalysisError,
    analysis_result,
    check_same_group,
    check_surface_matches_run,
    config_list,
    load_surface_checked,
    read_run,
    require_key,
    run_dir,
    surface_input,
    surface_run,
    unknown_run,
)
from bertviz_landscape.analysis.spec import AnalysisSpec, ClaimSpec, Measure, Options, Row, summary_mean
from bertviz_landscape.contracts.sections import Settings, section


def lowest_region(values: np.ndarray, q: float) -> np.ndarray:
    """Boolean mask of the points at or below the q-th percentile of `values` (finite values only)."""
    return values <= np.percentile(values, q)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else math.nan


def consistency_of(train: np.ndarray, dev: np.ndarray, quantiles: Sequence[float] = (10, 25, 50)) -> dict:
    """Spearman ρ and lowest-q% IoUs of two arrays of the same grid (non-finite points masked)."""
    from scipy.stats import spearmanr

    train, dev = np.asarray(train, dtype=np.float64).ravel(), np.asarray(dev, dtype=np.float64).ravel()
    if train.shape != dev.shape:
        raise AnalysisError(f"train and dev arrays differ in shape: {train.shape} vs {dev.shape}")
    mask = np.isfinite(train) & np.isfinite(dev)
    t, d = train[mask], dev[mask]
    out: dict = {"n_points": int(mask.sum()), "n_masked": int((~mask).sum())}
    constant = [name for name, x in (("train", t), ("dev", d)) if x.size and np.ptp(x) == 0]
    if t.size < 3 or constant:
        out["spearman"], out["spearman_pvalue"] = None, None
        out["note"] = (
            f"{' and '.join(constant)} values are constant over the grid: no ranking"
            if constant
            else "fewer than 3 finite points"
        )
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = spearmanr(t, d)
        out["spearman"], out["spearman_pvalue"] = float(res.statistic), float(res.pvalue)
    out["iou"], out["region_fraction"] = {}, {}
    for q in quantiles:
        key = f"{q:g}"
        if t.size == 0:
            out["iou"][key], out["region_fraction"][key] = None, None
            continue
        rt, rd = lowest_region(t, q), lowest_region(d, q)
        out["iou"][key] = iou(rt, rd)
        out["region_fraction"][key] = {"train": float(rt.mean()), "dev": float(rd.mean())}
    return out


def _argmin_position(values: np.ndarray, surface) -> tuple[float, float] | None:
    """The (α, β) of the lowest finite value (mean position of tied minima); None when none is finite."""
    z = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(z)
    if not finite.any():
        return None
    low = finite & (z == np.min(z[finite]))
    if surface.two_d:
        jj, ii = np.nonzero(low)
        return float(np.mean(surface.x[ii])), float(np.mean(surface.y[jj]))
    (ii,) = np.nonzero(low)
    return float(np.mean(surface.x[ii])), 0.0


def minima_distance(train: np.ndarray, dev: np.ndarray, surface) -> dict:
    """The two arrays' grid minima and the distance between them (module docstring)."""
    a, b = _argmin_position(train, surface), _argmin_position(dev, surface)
    out = {"train": a, "dev": b, "grid_units": None, "absolute": None, "units_delta1": None}
    if a is None or b is None:
        return out
    d = surface.meta.get("directions") or {}
    n1, n2 = d.get("norm_x"), d.get("norm_y") if surface.two_d else 0.0
    cos = d.get("cosine_xy") if surface.two_d else 0.0
    da, db = b[0] - a[0], b[1] - a[1]
    out["grid_units"] = math.hypot(da, db)
    if n1:
        n2 = float(n2 or 0.0)
        c = float(cos) if cos is not None and math.isfinite(float(cos)) else 0.0
        sq = (da * n1) ** 2 + (db * n2) ** 2 + 2 * da * db * n1 * n2 * c
        out["absolute"] = math.sqrt(max(sq, 0.0))
        out["units_delta1"] = out["absolute"] / n1
    return out


def regret(train: np.ndarray, dev: np.ndarray) -> float | None:
    """The dev error at the training loss's grid minimum (the mean over tied minima) minus the grid's
    lowest dev error, over the points where both are finite: what choosing the point by training loss
    costs on dev (0: the two minima coincide). None when no point is finite."""
    t, d = np.asarray(train, dtype=np.float64), np.asarray(dev, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(d)
    if not ok.any():
        return None
    low = ok & (t == np.min(t[ok]))
    return float(np.mean(d[low]) - np.min(d[ok]))


def debiased(value: float | None, replicates: Sequence[float]) -> float | None:
    """Efron's bootstrap bias correction 2·value − mean(replicates), kept in the metric's range
    [0, ∞): a grid minimum of noisy values sits below the true one, so the raw regret and minima
    distance are biased upward even where the two surfaces' true minima coincide; the correction
    removes that bias's first-order part. Both are ≥ 0 by definition, so a correction below 0 (a
    bootstrap mean above a small raw value) is 0 — never a negative regret or distance."""
    if value is None or not len(replicates):
        return None
    return max(0.0, float(2.0 * value - float(np.mean(replicates))))


def bootstrap_consistency(
    surface, train_key: str, dev_key: str, quantile: float, samples: int, seed: int
) -> dict | None:
    """The bootstrap over examples of Spearman ρ, IoU at `quantile` and the minima distance (module
    docstring); None, or a dict with a "note", when the surface lacks what it needs."""
    pe = surface.per_example
    if not pe or samples < 2:
        return None
    if train_key != "train_loss" or "train_loss" not in pe:
        return {"note": f"no per-example values for train_key={train_key} (needs train_loss)"}
    if dev_key == "dev_loss" and "dev_loss" in pe:
        dev_pe, to_dev = pe["dev_loss"], (lambda m: m)
    elif dev_key == "dev_error" and "dev_correct" in pe and surface.meta.get("primary_metric") == "accuracy":
        dev_pe, to_dev = pe["dev_correct"], (lambda m: 1.0 - m)
    else:
        return {
            "note": f"dev_key={dev_key} cannot be recomputed from per-example values "
            f"(primary metric {surface.meta.get('primary_metric')}): use dev_key=dev_loss"
        }
    train_pe = np.asarray(pe["train_loss"], dtype=np.float64)
    dev_pe = np.asarray(dev_pe, dtype=np.float64)
    nt, nd = train_pe.shape[-1], dev_pe.shape[-1]
    rng = np.random.default_rng(int(seed))
    reps: dict[str, list[float]] = {"spearman": [], "iou": [], "minima_distance": [], "regret": []}
    for _ in range(int(samples)):
        t = train_pe[..., rng.integers(0, nt, nt)].mean(axis=-1)
        d = to_dev(dev_pe[..., rng.integers(0, nd, nd)].mean(axis=-1))
        c = consistency_of(t, d, [quantile])
        m = minima_distance(t, d, surface)
        for key, value in (
            ("spearman", c["spearman"]),
            ("iou", c["iou"][f"{float(quantile):g}"]),
            ("minima_distance", m["units_delta1"]),
            ("regret", regret(t, d)),
        ):
            if value is not None and math.isfinite(value):
                reps[key].append(float(value))
    out: dict = {"samples": int(samples), "seed": int(seed), "train_examples": nt, "dev_examples": nd}
    for key, values in reps.items():
        v = np.asarray(values)
        out[key] = {
            "stderr": float(v.std(ddof=1)) if len(v) > 1 else None,
            "low": float(np.percentile(v, 2.5)) if len(v) else None,
            "high": float(np.percentile(v, 97.5)) if len(v) else None,
            "defined": len(v),
            "mean": float(v.mean()) if len(v) else None,
        }
    return out


def consistency(
    surfaces: Sequence[str | os.PathLike],
    runs: Sequence[str | os.PathLike] = (),
    train_key: str = "train_loss",
    dev_key: str = "dev_error",
    quantiles: Sequence[float] = (10, 25, 50),
    iou_quantile: float = 25,
    bootstrap_samples: int = 200,
    bootstrap_seed: int = 0,
) -> dict:
    """The consistency analysis JSON over `surfaces` (one per run; `runs`, if given, in the same order)."""
    surfaces, runs = list(surfaces), list(runs)
    if not surfaces:
        raise AnalysisError("analysis=consistency needs surface=<surface .h5> (or surfaces=[...])")
    if runs and len(runs) != len(surfaces):
        raise AnalysisError(
            f"analysis=consistency: {len(runs)} runs but {len(surfaces)} surfaces (one surface per run)"
        )
    quantiles = [float(q) for q in quantiles]
    bad = [q for q in quantiles if not 0 < q <= 100]
    if bad:
        raise AnalysisError(f"analysis.quantiles must lie in (0, 100] (percent), got {bad}")
    if float(iou_quantile) not in quantiles:
        quantiles.append(float(iou_quantile))
    infos, per_run, inputs, scalars, numbers = [], [], [], [], []
    for i, path in enumerate(surfaces):
        surface = load_surface_checked(path, "surface")
        train = require_key(surface, path, train_key, "analysis.train_key")
        dev = require_key(surface, path, dev_key, "analysis.dev_key")
        run = runs[i] if runs else surface_run(surface)
        if run is not None:
            info = read_run(run)
            check_surface_matches_run(surface, path, run_dir(run))
        else:
            info = unknown_run(surface.meta.get("task"), surface.meta.get("primary_metric"))
        entry = consistency_of(train, dev, quantiles)
        entry |= {"train_key": train_key, "dev_key": dev_key, "dimensions": 2 if surface.two_d else 1}
        entry["minima"] = minima_distance(train, dev, surface)
        boot = bootstrap_consistency(
            surface, train_key, dev_key, float(iou_quantile), int(bootstrap_samples), int(bootstrap_seed)
        )
        entry["bootstrap"] = boot
        boot_ok = boot is not None and "note" not in boot
        entry["regret"] = regret(train, dev)

        def corrected(key: str, value, boot=boot, boot_ok=boot_ok):
            rep = (boot or {}).get(key) or {}
            return debiased(value, [rep["mean"]]) if boot_ok and rep.get("mean") is not None else None

        numbers.append(
            {
                "regret": entry["regret"],
                "regret_debiased": corrected("regret", entry["regret"]),
                "regret_boot_se": boot["regret"]["stderr"] if boot_ok else None,
                "minima_distance_debiased": corrected("minima_distance", entry["minima"]["units_delta1"]),
                "spearman_train_dev": entry["spearman"],
                "iou": entry["iou"][f"{float(iou_quantile):g}"],
                **{f"iou_{k}": v for k, v in entry["iou"].items()},
                "minima_distance": entry["minima"]["units_delta1"],
                "minima_distance_abs": entry["minima"]["absolute"],
                "n_points": float(entry["n_points"]),
                "spearman_train_dev_boot_se": boot["spearman"]["stderr"] if boot_ok else None,
                "iou_boot_se": boot["iou"]["stderr"] if boot_ok else None,
                "minima_distance_boot_se": boot["minima_distance"]["stderr"] if boot_ok else None,
                "bootstrap_samples": float(boot["samples"]) if boot_ok else None,
            }
        )
        infos.append(info)
        per_run.append(entry)
        inputs.append(surface_input(surface, path))
        scalars.append({"spearman": entry["spearman"], **{f"iou_{k}": v for k, v in entry["iou"].items()}})
    check_same_group(infos)
    return analysis_result(
        "consistency",
        {"runs": [i.run for i in infos], "surfaces": inputs},
        infos,
        per_run,
        scalars,
        numbers,
        iou_quantile=float(iou_quantile),
    )


@section
class ConsistencyBootstrap(Settings):
    samples: int = 200
    seed: int = 0


@section
class ConsistencyOptions(Settings):
    """conf/analysis/consistency.yaml."""

    name: str = "consistency"
    train_key: str = "train_loss"
    dev_key: str = "dev_error"
    quantiles: tuple[float, ...] = (10, 25, 50)
    iou_quantile: float = 25.0
    bootstrap: ConsistencyBootstrap = ConsistencyBootstrap()


def consistency_from_config(cfg) -> dict:
    """The analysis JSON of an `AnalyzeRequest` for analysis=consistency."""
    a = cfg.analysis
    return consistency(
        config_list(cfg, "surface", "surfaces"),
        config_list(cfg, "run", "runs"),
        str(a.train_key),
        str(a.dev_key),
        list(a.quantiles),
        float(a.get("iou_quantile", 25)),
        int((a.get("bootstrap") or {}).get("samples", 200)),
        int((a.get("bootstrap") or {}).get("seed", 0)),
    )


def legacy_numbers(data: dict, per_run: dict, opts: Options) -> dict:
    """A JSON without ``numbers``: ρ and the IoU at q = 25 from its summary."""
    return {"spearman_train_dev": summary_mean(data, "spearman"), "iou": summary_mean(data, "iou_25")}


SPEC = AnalysisSpec(
    "consistency",
    consistency_from_config,
    reads=("plane", "run"),
    rows=(
        Row("regret_debiased", "dev-error regret of the training-loss minimum (bootstrap bias-corrected)"),
        Row("regret_boot_se", "  its bootstrap s.e. (within run)"),
        Row("minima_distance_debiased", "distance between the minima (bootstrap bias-corrected, ‖δ1‖ units)"),
        Row("spearman_train_dev", "Spearman ρ(train loss, dev error)"),
        Row("spearman_train_dev_boot_se", "  its bootstrap s.e. (within run)"),
        Row("iou", "IoU of lowest-25% regions"),
        Row("minima_distance", "distance between the surfaces' minima"),
    ),
    claims=(
        ClaimSpec(
            "consistency",
            "Training loss and dev error surfaces are consistent for fine-tuning (less so from scratch)",
            4,
            (
                Measure(
                    "regret_debiased",
                    -1,
                    "dev error at the training-loss minimum minus the grid's lowest dev error "
                    "(per-example bootstrap bias-corrected; lower = more consistent)",
                ),
                Measure("spearman_train_dev", +1, "Spearman ρ(training loss, dev error) over the 2D grid"),
            ),
            "the pretrained surfaces agree more",
            "the from-scratch surfaces agree more",
            (
                ("spearman_train_dev_boot_se", "within-run bootstrap s.e. of ρ (a check, not the noise)"),
                ("iou", "IoU of the lowest-25% regions"),
                ("minima_distance_debiased", "distance between the two minima (bias-corrected, ‖δ1‖)"),
                ("regret", "raw regret"),
            ),
        ),
    ),
    legacy=legacy_numbers,
    order=30,
    options=ConsistencyOptions,
)
