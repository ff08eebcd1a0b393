"""Every-step trajectory in bounded disk: a seeded CountSketch of θ_t − θ0 at every step.

Full deltas (`bertviz_landscape.contracts.snapshots`) cost 2 bytes per parameter per snapshot — 220 MB per
step for BERT-base. A *CountSketch* of the same delta costs 4·k bytes whatever the model
(1 MiB at k = 2^18), and keeps what the trajectory analysis needs: inner products.

The sketch. Every trainable parameter element i (parameter ``name``, row-major flat index j)
gets a bucket h(i) ∈ [0, k) and a sign s(i) ∈ {−1, +1} from a seeded hash,

    z = splitmix64(key(seed, name) + (j + 1)·0x9E3779B97F4A7C15 mod 2^64)
    h(i) = z mod k,   s(i) = +1 if the top bit of z is 0 else −1
    key(seed, name) = the first 8 bytes (little endian) of blake2b("bertviz-countsketch/1:<seed>:<name>")

and S(x)[b] = Σ_{h(i)=b} s(i)·x_i. The hash depends only on (seed, name, j) — not on torch's
random generators, the device or the parameter order — so a direction δ of another run (δ2),
a PCA direction or any dict of tensors is sketched with the same buckets by `CountSketch`
with the run's seed. ⟨S(x), S(y)⟩ is an unbiased estimate of ⟨x, y⟩ with variance
(‖x‖²‖y‖² + ⟨x,y⟩² − 2Σx_i²y_i²)/k ≤ 2‖x‖²‖y‖²/k. S is linear, so a step's estimate can be
*anchored* on the nearest full snapshot a (exact there): ⟨v_t, δ⟩ ≈ ⟨v_a, δ⟩ + ⟨S(v_t) − S(v_a), S(δ)⟩,
whose variance is ≤ 2‖v_t − v_a‖²‖δ‖²/k — far smaller than the plain bound.

Layout of ``<run_dir>/sketches/`` (format ``bertviz-countsketch/1``):

``meta.json``
    ``{"format", "buckets": k, "seed", "hash": "splitmix64/blake2b-key", "dtype": "float32",
    "parameters": [{"name", "shape"}, ...], "bytes_per_step": 4·k, "theta0": "../checkpoints/init"}``.
``sketch.f32``
    Raw little-endian float32, one row of k values per recorded step (row r at byte r·4k):
    S(θ_t − θ0), accumulated in float32 from the float32 delta (before any rounding to the
    snapshots' storage dtype). Read as a memory map.
``norms.f64``
    Raw little-endian float64, one row per recorded step: ‖θ_t − θ0‖² of each parameter, in the
    order of ``parameters`` — so the squared norm over any subset of parameters (a direction
    confined to some layers, biases excluded) is exact too.
``index.jsonl``
    One JSON line per finished row: ``{"step", "epoch", "loss", "row", "norm_sq"}``, where
    ``norm_sq`` = ‖θ_t − θ0‖² computed exactly (float64), so β_t and the diagonal of the Gram
    matrix need no estimate. A line is appended (and fsynced) only after its rows (sketch and
    norms) are written and fsynced, so the index never lists a torn row; a torn last line is
    ignored on reading, and a row beyond the index (a crash between the two writes) is
    overwritten by the next one.

Reading: ``Sketches(run_dir)`` (``.steps``, ``.rows()``, ``.norm_sq``, ``.sketcher()``);
`sketched_projection(run_dir, delta1, delta2)` gives the paper's α_t, β_t, least-squares
plane coordinates and distance from the plane at every recorded step, each with its standard
error bound; `sketched_gram(run_dir)` the T×T Gram matrix for trajectory PCA and
`algebra.pca_of_gram(G)` its explained variance and coordinates.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bertviz_landscape.algebra import dot, gram, pca_of_gram, plane_coordinates
from bertviz_landscape.contracts.atomic import (
    open_fd_in_place,
    open_in_place,
    write_json_atomic,
    write_text_atomic,
)
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.contracts.snapshots import Snapshots

FORMAT = "bertviz-countsketch/1"
HASH = "splitmix64/blake2b-key"
DATA = "sketch.f32"
NORMS = "norms.f64"
INDEX = "index.jsonl"
META = "meta.json"
log = logging.getLogger(__name__)

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


class SketchError(BadInput):
    """A sketch directory, row or direction that is missing, torn or does not match (named in the message)."""


def parameter_key(seed: int, name: str) -> int:
    digest = hashlib.blake2b(f"{FORMAT}:{int(seed)}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def hash_elements(
    seed: int, name: str, numel: int, buckets: int, chunk: int = 1 << 24
) -> tuple[np.ndarray, np.ndarray]:
    """(bucket int32[numel], sign int8[numel]) of one parameter's elements (flat row-major index)."""
    key = np.uint64(parameter_key(seed, name))
    bucket = np.empty(numel, dtype=np.int32)
    sign = np.empty(numel, dtype=np.int8)
    k = np.uint64(buckets)
    with np.errstate(over="ignore"):
        for start in range(0, numel, chunk):
            j = np.arange(start + 1, min(start + chunk, numel) + 1, dtype=np.uint64)
            z = key + j * _GOLDEN
            z = (z ^ (z >> np.uint64(30))) * _M1
            z = (z ^ (z >> np.uint64(27))) * _M2
            z ^= z >> np.uint64(31)
            bucket[start : start + len(j)] = (z % k).astype(np.int32)
            sign[start : start + len(j)] = 1 - 2 * (z >> np.uint64(63)).astype(np.int8)
    return bucket, sign


class CountSketch:
    """S(x) for dicts of tensors keyed by parameter name, with the hashes of (`seed`, `buckets`).

    ``shapes`` (name → shape) fixes the parameters the sketch knows. Each element's bucket and
    sign are folded into one int64 index into 2k accumulators (b, or k + b for a negative sign),
    so a parameter costs one ``scatter_add_`` and no multiplication; S(x) = acc[:k] − acc[k:].
    The indices are built lazily per parameter and kept on ``device`` (8 bytes per element).
    """

    def __init__(
        self, shapes: Mapping[str, Sequence[int]], buckets: int, seed: int, device: str | torch.device = "cpu"
    ) -> None:
        if int(buckets) < 1:
            raise SketchError(f"sketch buckets must be >= 1, got {buckets}")
        self.shapes = {n: tuple(int(d) for d in s) for n, s in shapes.items()}
        self.buckets = int(buckets)
        self.seed = int(seed)
        self.device = torch.device(device)
        self._index: dict[str, torch.Tensor] = {}

    def index(self, name: str) -> torch.Tensor:
        if name not in self._index:
            numel = math.prod(self.shapes[name])
            bucket, sign = hash_elements(self.seed, name, numel, self.buckets)
            folded = bucket.astype(np.int64) + self.buckets * (sign < 0)
            self._index[name] = torch.from_numpy(folded).to(self.device)
        return self._index[name]

    def prepare(self) -> CountSketch:
        for name in self.shapes:
            self.index(name)
        return self

    def accumulator(
        self, dtype: torch.dtype = torch.float32, device: str | torch.device | None = None
    ) -> torch.Tensor:
        return torch.zeros(2 * self.buckets, dtype=dtype, device=device or self.device)

    def add(self, acc: torch.Tensor, name: str, tensor: torch.Tensor) -> None:
        """acc += the contribution of `tensor` as parameter `name` (acc: an `accumulator()`)."""
        if tuple(tensor.shape) != self.shapes[name]:
            raise SketchError(
                f"parameter {name!r} has shape {tuple(tensor.shape)}, the sketch expects {self.shapes[name]}"
            )
        acc.scatter_add_(
            0, self.index(name), tensor.detach().reshape(-1).to(device=acc.device, dtype=acc.dtype)
        )

    def finish(self, acc: torch.Tensor) -> torch.Tensor:
        """S(x) [k] from the 2k accumulators."""
        return acc[: self.buckets] - acc[self.buckets :]

    def sketch(
        self, tensors: Mapping[str, torch.Tensor], dtype: torch.dtype = torch.float64, strict: bool = False
    ) -> torch.Tensor:
        """S(x) of a dict name → tensor. Parameters the sketch does not know contribute nothing
        to an inner product with a trajectory that lacks them; `strict=True` refuses them."""
        acc = self.accumulator(dtype)
        unknown = [n for n in tensors if n not in self.shapes]
        if unknown and strict:
            raise SketchError(f"parameters {unknown[:3]} are not in the sketch")
        for name, tensor in tensors.items():
            if name in self.shapes:
                self.add(acc, name, tensor)
        return self.finish(acc)


# -- writing -----------------------------------------------------------------------------------
def sketch_dir(run_dir: str | os.PathLike) -> Path:
    return RunDir(run_dir).sketches


def write_meta(
    directory: Path, shapes: Mapping[str, Sequence[int]], buckets: int, seed: int, theta0_relpath: str
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        directory / META,
        {
            "format": FORMAT,
            "buckets": int(buckets),
            "seed": int(seed),
            "hash": HASH,
            "dtype": "float32",
            "parameters": [{"name": n, "shape": list(s)} for n, s in shapes.items()],
            "bytes_per_step": 4 * int(buckets),
            "theta0": theta0_relpath,
        },
    )


def _read_index(directory: Path) -> list[dict]:
    index = directory / INDEX
    lines = index.read_text().splitlines() if index.exists() else []
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
            row = {
                "step": int(row["step"]),
                "epoch": int(row["epoch"]),
                "loss": row.get("loss"),
                "row": int(row["row"]),
                "norm_sq": float(row["norm_sq"]),
            }
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            if number == len(lines):
                log.warning(
                    "%s: ignoring the torn last line %d (a crash while it was written)", index, number
                )
                continue
            raise SketchError(f"{index}: line {number} is not a sketch record: {line[:80]!r}") from None
        rows.append(row)
    return rows


class SketchWriter:
    """Appends rows to ``sketch.f32`` and their records to ``index.jsonl`` (crash-safe, see module doc)."""

    def __init__(self, directory: Path, buckets: int, num_parameters: int | None = None) -> None:
        self.directory = Path(directory)
        self.buckets = int(buckets)
        if num_parameters is None and (self.directory / META).is_file():
            num_parameters = len(json.loads((self.directory / META).read_text())["parameters"])
        self.num_parameters = num_parameters
        self.rows = len(_read_index(self.directory))

    def truncate(self, last_step: int) -> None:
        """Forget rows after `last_step` (a resumed run writes them again)."""
        kept = [r for r in _read_index(self.directory) if r["step"] <= last_step]
        if any(r["row"] != i for i, r in enumerate(kept)):
            raise SketchError(f"{self.directory / INDEX}: rows are not in order")
        write_text_atomic(self.directory / INDEX, "".join(json.dumps(r) + "\n" for r in kept))
        for name, width in ((DATA, 4 * self.buckets), (NORMS, 8 * (self.num_parameters or 0))):
            if (self.directory / name).exists() or (self.directory / name).is_symlink():
                fd = open_fd_in_place(self.directory / name, os.O_RDWR)  # never a planted link's target
                try:
                    os.ftruncate(fd, len(kept) * width)
                finally:
                    os.close(fd)
        self.rows = len(kept)

    def append(
        self,
        step: int,
        epoch: int,
        loss: float | None,
        row: np.ndarray,
        norm_sq: float,
        parameter_norm_sq: np.ndarray | None = None,
    ) -> None:
        row = np.ascontiguousarray(row, dtype="<f4")
        if row.shape != (self.buckets,):
            raise SketchError(f"a sketch row has shape {row.shape}, expected ({self.buckets},)")
        writes = [(DATA, row.tobytes(), 4 * self.buckets)]
        if parameter_norm_sq is not None:
            norms = np.ascontiguousarray(parameter_norm_sq, dtype="<f8")
            if norms.shape != (self.num_parameters,):
                raise SketchError(f"a norms row has shape {norms.shape}, expected ({self.num_parameters},)")
            writes.append((NORMS, norms.tobytes(), 8 * self.num_parameters))
        for name, payload, width in writes:
            fd = open_fd_in_place(self.directory / name, os.O_RDWR)
            try:
                os.pwrite(fd, payload, self.rows * width)
                os.fsync(fd)
            finally:
                os.close(fd)
        with open_in_place(self.directory / INDEX, "a") as index:
            index.write(
                json.dumps(
                    {
                        "step": int(step),
                        "epoch": int(epoch),
                        "loss": loss,
                        "row": self.rows,
                        "norm_sq": float(norm_sq),
                    }
                )
                + "\n"
            )
            index.flush()
            os.fsync(index.fileno())
        self.rows += 1


# -- reading -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SketchRecord:
    step: int
    epoch: int
    loss: float | None
    row: int
    norm_sq: float


class Sketches:
    """A run's every-step sketches: ``Sketches(run_dir)`` (or the ``sketches/`` directory)."""

    def __init__(self, path: str | os.PathLike) -> None:
        path = Path(path)
        self.directory = sketch_dir(path) if (sketch_dir(path) / META).is_file() else path
        meta_path = self.directory / META
        if not meta_path.is_file():
            raise SketchError(
                f"no sketches here: {meta_path} does not exist (train with "
                "callbacks.snapshots.sketch.enabled=true)"
            )
        try:
            self.meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise SketchError(f"{meta_path}: not valid JSON ({err})") from None
        if not isinstance(self.meta, dict) or self.meta.get("format") != FORMAT:
            fmt = self.meta.get("format") if isinstance(self.meta, dict) else None
            raise SketchError(f"{meta_path}: unknown sketch format {fmt!r}")
        try:
            self.buckets = int(self.meta["buckets"])
            self.seed = int(self.meta["seed"])
            shapes = {str(p["name"]): tuple(int(n) for n in p["shape"]) for p in self.meta["parameters"]}
        except (KeyError, TypeError, ValueError) as err:
            raise SketchError(f"{meta_path}: bad or missing key ({type(err).__name__}: {err})") from None
        if self.buckets < 1 or not shapes:
            raise SketchError(f"{meta_path}: buckets must be >= 1 and parameters non-empty")
        by_step: dict[int, SketchRecord] = {}
        for r in _read_index(self.directory):
            by_step[r["step"]] = SketchRecord(**r)
        self.records = sorted(by_step.values(), key=lambda r: r.step)
        data = self.directory / DATA
        need = (max((r.row for r in self.records), default=-1) + 1) * 4 * self.buckets
        have = data.stat().st_size if data.exists() else 0
        if have < need:
            raise SketchError(
                f"{data}: {have} bytes, but {self.directory / INDEX} lists rows up to byte {need}"
            )
        self._data = (
            np.memmap(data, dtype="<f4", mode="r", shape=(need // (4 * self.buckets), self.buckets))
            if need
            else None
        )
        norms, P = self.directory / NORMS, len(self.meta["parameters"])
        rows = need // (4 * self.buckets)
        have_norms = norms.stat().st_size if norms.exists() else 0
        self._norms = (
            np.memmap(norms, dtype="<f8", mode="r", shape=(rows, P))
            if rows and have_norms >= rows * 8 * P
            else None
        )

    def __len__(self) -> int:
        return len(self.records)

    @property
    def steps(self) -> list[int]:
        return [r.step for r in self.records]

    @property
    def norm_sq(self) -> np.ndarray:
        return np.array([r.norm_sq for r in self.records], dtype=np.float64)

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {p["name"]: tuple(p["shape"]) for p in self.meta["parameters"]}

    @property
    def parameter_names(self) -> list[str]:
        return [p["name"] for p in self.meta["parameters"]]

    def norm_sq_of(self, names: Sequence[str] | None = None) -> np.ndarray:
        """‖θ_t − θ0‖² over the parameters `names` (all: the index's exact total) at every step."""
        if names is None or set(names) >= set(self.parameter_names):
            return self.norm_sq
        if self._norms is None:
            raise SketchError(
                f"{self.directory / NORMS}: missing, so norms over a subset of parameters are unknown"
            )
        pos = {n: i for i, n in enumerate(self.parameter_names)}
        unknown = [n for n in names if n not in pos]
        if unknown:
            raise SketchError(f"parameters {unknown[:3]} are not in the sketch of {self.directory}")
        cols = [pos[n] for n in names]
        return np.asarray(self._norms[[r.row for r in self.records]][:, cols].sum(axis=1), dtype=np.float64)

    def sketcher(self, device: str | torch.device = "cpu") -> CountSketch:
        """The CountSketch these rows were made with (for sketching directions)."""
        return CountSketch(self.shapes, self.buckets, self.seed, device)

    def blocks(self, size: int = 256) -> Iterator[tuple[slice, np.ndarray]]:
        """(slice of records, float64 rows) in blocks of `size` steps: the estimates below never hold
        more than two blocks (BERT-base on SST-2 has 6.6 GB of rows)."""
        for start in range(0, len(self.records), size):
            part = self.records[start : start + size]
            block = np.asarray(self._data[[r.row for r in part]], dtype=np.float64)
            self._check_finite(block, part)
            yield slice(start, start + len(part)), block

    def _check_finite(self, block: np.ndarray, part: Sequence[SketchRecord]) -> None:
        """A sketch of a finite delta is finite: NaN/inf rows are a corrupt file (or a diverged run)."""
        bad = ~np.isfinite(block).all(axis=1)
        if bad.any():
            steps = [r.step for r, b in zip(part, bad) if b]
            raise SketchError(
                f"{self.directory / DATA}: the sketch rows of steps {steps[:5]} are not finite (NaN/inf); "
                "the trajectory cannot be estimated from them"
            )

    def rows(self, steps: Iterable[int] | None = None) -> np.ndarray:
        """S(θ_t − θ0) for `steps` (all recorded ones by default), float32 [T, k] (a copy in memory)."""
        if self._data is None:
            return np.zeros((0, self.buckets), dtype=np.float32)
        if steps is None:
            out = self._data[[r.row for r in self.records]]
            self._check_finite(out, self.records)
            return out
        steps = list(steps)
        by_step = {r.step: r for r in self.records}
        missing = [s for s in steps if s not in by_step and s != 0]
        if missing:
            raise SketchError(f"no sketch for steps {missing[:5]} in {self.directory}")
        out = np.stack(
            [
                self._data[by_step[s].row] if s in by_step else np.zeros(self.buckets, np.float32)
                for s in steps
            ]
        )
        self._check_finite(out, [by_step.get(s, SketchRecord(s, 0, None, -1, 0.0)) for s in steps])
        return out


# -- estimates ---------------------------------------------------------------------------------
def _anchors(sketches: Sketches, run_dir, anchors) -> np.ndarray:
    """For each recorded step, the nearest step with a full snapshot (0 = θ0 itself, v = 0)."""
    steps = np.array(sketches.steps)
    if anchors is None or anchors is False:
        return np.zeros_like(steps)
    if anchors == "auto":
        try:
            full = Snapshots(run_dir).steps
        except FileNotFoundError:
            full = []
    else:
        full = list(anchors)
    have = set(sketches.steps)
    full = np.array(sorted({0, *[s for s in full if s in have]}))
    nearest = full[np.abs(steps[:, None] - full[None, :]).argmin(axis=1)]
    return nearest


def _exact_dots(
    run_dir, steps: Sequence[int], directions: Sequence[Mapping[str, torch.Tensor]]
) -> np.ndarray:
    """⟨v_a, δ_j⟩ exactly from the full snapshots, [len(steps), len(directions)] (step 0 → 0)."""

    out = np.zeros((len(steps), len(directions)))
    snaps = None
    for i, s in enumerate(steps):
        if s == 0:
            continue
        snaps = snaps or Snapshots(run_dir)
        names = sorted({n for d in directions for n in d} & set(snaps.parameter_names))
        delta = snaps.delta(int(s), names)
        for j, d in enumerate(directions):
            out[i, j] = dot(delta, d)
    return out


def sketched_dots(run_dir, directions: Sequence[Mapping[str, torch.Tensor]], anchors="auto") -> dict:
    """⟨θ_t − θ0, δ_j⟩ at every sketched step, and the standard error bound of each estimate.

    `anchors`: "auto" anchors every step on its nearest full snapshot (exact there; see the
    module doc), a list of steps does so on those, None uses the plain estimate ⟨S(v_t), S(δ)⟩.
    """
    sk = Sketches(run_dir)
    cs = sk.sketcher()
    sd = np.stack([cs.sketch(d).numpy() for d in directions], axis=1)  # [k, J]
    near = _anchors(sk, run_dir, anchors)
    est = np.zeros((len(sk), len(directions)))
    residual_sq = sk.norm_sq.copy()
    uniq = sorted(set(int(a) for a in near) - {0})
    exact = dict(zip(uniq, _exact_dots(run_dir, uniq, directions))) | {0: np.zeros(len(directions))}
    anchor_rows = dict(zip(uniq, sk.rows(uniq).astype(np.float64))) if uniq else {}
    for part, S in sk.blocks():
        est[part] = S @ sd
        for i in range(part.start, part.stop):
            a = int(near[i])
            if a:  # anchored: ⟨v_a, δ⟩ exact + ⟨S(v_t) − S(v_a), S(δ)⟩
                r = S[i - part.start] - anchor_rows[a]
                est[i] = exact[a] + r @ sd
                residual_sq[i] = r @ r  # ‖S(v_t − v_a)‖², an unbiased estimate of ‖v_t − v_a‖²
    norms_sq = np.array([dot(d, d) for d in directions])
    bound = np.sqrt(2.0 * residual_sq[:, None] * norms_sq[None, :] / sk.buckets)
    return {
        "steps": sk.steps,
        "epochs": [r.epoch for r in sk.records],
        "loss": [r.loss for r in sk.records],
        "dots": est,
        "stderr_bound": bound,
        "norm_sq": sk.norm_sq,
        "direction_norm_sq": norms_sq,
        "anchors": [int(a) for a in near],
        "buckets": sk.buckets,
    }


def project(dots: np.ndarray, norm_sq: np.ndarray, gram_dirs: np.ndarray) -> dict:
    """The paper's and the least-squares projections from inner products.

    dots [T, J] = ⟨v_t, δ_j⟩, norm_sq [T] = ‖v_t‖², gram_dirs [J, J] = ⟨δ_i, δ_j⟩ (J = 1 or 2).
    Each row is `algebra.plane_coordinates`: α_t = ⟨v, δ1⟩/‖δ1‖², β_t = sqrt(max(‖v‖²/‖δ1‖² − α_t², 0));
    least squares c = G⁻¹·dots (c = α_t for J = 1) and the distance from the plane
    sqrt(max(‖v‖² − c·dots, 0)) / ‖v‖ (0 for v = 0).
    """
    T, J = dots.shape
    rows = [
        plane_coordinates(float(d[0]), float(d[1]) if J > 1 else None, float(nsq), gram_dirs)
        for d, nsq in zip(dots, norm_sq)
    ]
    return {
        "alpha": np.array([r["alpha"] for r in rows], dtype=np.float64),
        "beta": np.array([r["beta"] for r in rows], dtype=np.float64),
        "lstsq": np.array([r["lstsq"][:J] for r in rows], dtype=np.float64).reshape(T, J),
        "distance_from_plane": np.array([r["distance_from_plane"] for r in rows], dtype=np.float64),
    }


def sketched_projection(
    run_dir,
    delta1: Mapping[str, torch.Tensor],
    delta2: Mapping[str, torch.Tensor] | None = None,
    anchors="auto",
) -> dict:
    """α_t, β_t (the paper's), least-squares (a, b) and distance from the plane at every
    sketched step of `run_dir`, from the sketches and the exact ‖θ_t − θ0‖².

    ``alpha_stderr`` is the bound sqrt(2‖v_t − v_a‖²‖δ1‖²/k)/‖δ1‖² on α_t's standard error
    (v_a: the anchor; v_a = 0 without anchors). At a full snapshot step the value is exact.
    """
    dirs = [delta1] + ([delta2] if delta2 is not None else [])
    est = sketched_dots(run_dir, dirs, anchors)
    gram_dirs = gram(dirs)
    out = project(est["dots"], est["norm_sq"], gram_dirs)
    out |= {k: est[k] for k in ("steps", "epochs", "loss", "anchors", "buckets")}
    out["alpha_stderr"] = est["stderr_bound"][:, 0] / gram_dirs[0, 0]
    out["dots"], out["dots_stderr"] = est["dots"], est["stderr_bound"]
    return out


def exact_gram(run_dir, steps: Sequence[int], chunk_elements: int = 1 << 22) -> np.ndarray:
    """⟨v_s, v_t⟩ exactly from full snapshots at `steps` (0 = θ0: zero row/column)."""

    T = len(steps)
    gram = np.zeros((T, T))
    real = [i for i, s in enumerate(steps) if s != 0]
    if not real:
        return gram
    snaps = Snapshots(run_dir)
    first = snaps.delta(int(steps[real[0]]))
    sub = torch.zeros(len(real), len(real), dtype=torch.float64)
    for n, t in first.items():
        for start in range(0, t.numel(), chunk_elements):
            block = torch.stack(
                [
                    snaps.delta(int(steps[i]), [n])[n].reshape(-1)[start : start + chunk_elements].double()
                    for i in real
                ]
            )
            sub += block @ block.T
    gram[np.ix_(real, real)] = sub.numpy()
    return gram


def sketched_gram(run_dir, anchors="auto", block: int = 256) -> dict:
    """The T×T Gram matrix ⟨v_s, v_t⟩ of every sketched step (exact diagonal; anchored on the
    full snapshots when `anchors="auto"`: Ĝ_st = G(a_s, a_t) + ⟨S_s, S_t⟩ − ⟨S_as, S_at⟩)."""
    sk = Sketches(run_dir)
    T = len(sk)
    gram = np.zeros((T, T))
    for pi, Si in sk.blocks(block):
        for pj, Sj in sk.blocks(block):
            if pj.start >= pi.start:
                gram[pi, pj] = Si @ Sj.T
                gram[pj, pi] = gram[pi, pj].T
    near = _anchors(sk, run_dir, anchors)
    if np.any(near):
        uniq = sorted(set(int(a) for a in near))
        pos = {a: i for i, a in enumerate(uniq)}
        exact = exact_gram(run_dir, uniq)
        Su = sk.rows(uniq).astype(np.float64)
        sketch_u = Su @ Su.T
        idx = np.array([pos[int(a)] for a in near])
        gram += (exact - sketch_u)[np.ix_(idx, idx)]
    np.fill_diagonal(gram, sk.norm_sq)
    return {"steps": sk.steps, "gram": gram, "anchors": [int(a) for a in near], "buckets": sk.buckets}


# -- the trajectory analysis' view -------------------------------------------------------------
def has_sketches(run_dir) -> bool:
    return (sketch_dir(run_dir) / META).is_file()


def sketched_plane(
    run_dir,
    x: Mapping[str, torch.Tensor],
    y: Mapping[str, torch.Tensor] | None = None,
    offset: Mapping[str, torch.Tensor] | None = None,
    anchors="auto",
) -> dict:
    """(⟨v, δ1⟩, ⟨v, δ2⟩, ‖v‖²) at every sketched step for v = θ_t − θ0 − offset over the
    parameters of `x` (the plane's; `offset` = centre − θ0, None for θ0) — what
    `analysis.trajectory.inner_products` computes from a full snapshot, here from the sketch
    (anchored on the full snapshots) and the exact per-parameter norms. Returns
    {"steps", "epochs", "loss", "vx", "vy" (None without y), "vv", "vx_stderr", "vy_stderr", "anchors"}."""
    names = list(x)
    sk = Sketches(run_dir)
    dirs = [dict(x)] + ([dict(y)] if y is not None else [])
    off = {n: offset[n] for n in names} if offset is not None else None
    if off is not None:
        dirs.append(off)
    est = sketched_dots(run_dir, dirs, anchors)
    dots, err = est["dots"], est["stderr_bound"]
    vv = sk.norm_sq_of(names)
    vx, vy = dots[:, 0].copy(), (dots[:, 1].copy() if y is not None else None)
    if off is not None:
        vx -= dot(off, x)
        if vy is not None:
            vy -= dot(off, y)
        vv = vv - 2 * dots[:, -1] + dot(off, off)
    return {
        "steps": est["steps"],
        "epochs": est["epochs"],
        "loss": est["loss"],
        "vx": vx,
        "vy": vy,
        "vv": np.clip(vv, 0, None),
        "vx_stderr": err[:, 0],
        "vy_stderr": err[:, 1] if y is not None else None,
        "anchors": est["anchors"],
        "buckets": est["buckets"],
    }


def sketched_trajectory_pca(run_dir, components: int = 2, anchors="auto") -> dict:
    """Trajectory PCA of every sketched step over all parameters, in `analysis.trajectory.trajectory_pca`'s
    format (explained variance λ_k/(T − 1), ratio, singular values, coordinates with the last
    step's ≥ 0, num_snapshots), from `sketched_gram`."""
    g = sketched_gram(run_dir, anchors)
    T = len(g["steps"])
    if T < 2:
        raise SketchError(f"trajectory PCA needs at least 2 sketched steps; {sketch_dir(run_dir)} has {T}")
    return pca_of_gram(g["gram"], components) | {"source": "sketch", "buckets": g["buckets"]}
