"""How good is the every-step CountSketch trajectory? MiniLM on MRPC against the exact projection.

    python benchmarks/bench_sketch.py [--steps 50] [--workdir /tmp/bench_sketch] [--seeds 5]

1. Trains MiniLM (pretrained) on MRPC for `--steps` steps of batch 32 with full float16 deltas
   AND the callback's sketch (k = 2^18) at every step; trains the same θ0 on RTE for
   `--steps2` steps to get δ2 = θ2 − θ0 (the paper's second axis).
2. The exact reference: α_t, β_t (paper), least-squares (a, b), and the top-2 PCA explained
   variance ratio of all steps, from the full deltas (float64 sums).
3. Sketch estimates at several k and hash seeds (sketched offline from the same deltas with
   `CountSketch`, which the test suite checks equals the callback's rows), plain and anchored on
   full deltas every `--anchor-every` steps (what a run with callbacks.snapshots.every_n_steps=n
   keeps). Prints the largest errors, bytes per step and the callback's per-step sketch cost.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from bertviz_landscape.cli.compose import compose
from bertviz_landscape.contracts.sketches import (
    CountSketch,
    Sketches,
    SketchWriter,
    _dot,
    exact_gram,
    pca_from_gram,
    project,
    sketched_gram,
    sketched_projection,
    write_meta,
)
from bertviz_landscape.contracts.snapshots import Snapshots
from bertviz_landscape.training.train import train

GLUE = os.environ.get("GLUE_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"))


def train_run(workdir: Path, task: str, steps: int, sketch: bool) -> Path:
    run = workdir / f"{task}_run"
    overrides = [
        f"task={task}",
        f"data.glue_dir={GLUE}",
        f"data.max_train_samples={32 * steps}",
        "data.max_eval_samples=64",
        "trainer.max_epochs=1",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "trainer.accelerator=cpu",
        f"paths.output_dir={workdir}",
    ]
    if sketch:
        overrides += [
            "callbacks.snapshots.every_n_steps=1",
            "callbacks.snapshots.dtype=float16",
            "callbacks.snapshots.sketch.enabled=true",
            "callbacks.snapshots.sketch.buckets=262144",
        ]
    else:
        overrides += ["callbacks.snapshots.enabled=false"]
    train(compose("train", overrides), run)
    return run


def state(path: Path) -> dict:
    from safetensors.torch import load_file

    out = {}
    for f in sorted(path.glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def offline_sketch(run: Path, target: Path, buckets: int, seed: int) -> Path:
    """A sketch directory for `run` with (buckets, seed), made from its full deltas."""
    snaps = Snapshots(run)
    target.mkdir(parents=True, exist_ok=True)
    shapes = {p["name"]: tuple(p["shape"]) for p in snaps.meta["parameters"]}
    write_meta(target, shapes, buckets, seed, "unused")
    writer = SketchWriter(target, buckets)
    writer.truncate(0)
    cs = CountSketch(shapes, buckets, seed).prepare()
    norms = {r.step: r.norm_sq for r in Sketches(run).records}
    for r, delta in snaps.iter_deltas():
        acc = cs.accumulator(torch.float32)
        for n, t in delta.items():
            cs.add(acc, n, t.float())
        writer.append(r.step, r.epoch, r.loss, cs.finish(acc).numpy(), norms[r.step])
    return target


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--steps2", type=int, default=20)
    p.add_argument("--workdir", default="/tmp/bench_sketch")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--buckets", default="65536,262144,1048576")
    p.add_argument("--anchor-every", type=int, default=10)
    p.add_argument("--out", default=None, help="write the numbers as JSON here")
    args = p.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    run = work / "mrpc_run"
    if not (run / "metrics.json").exists():
        started = time.perf_counter()
        run = train_run(work, "mrpc", args.steps, sketch=True)
        print(f"trained MRPC with every-step full deltas + sketch in {time.perf_counter() - started:.0f} s")
    run2 = work / "rte_run"
    if not (run2 / "metrics.json").exists():
        run2 = train_run(work, "rte", args.steps2, sketch=False)
    snaps, sk = Snapshots(run), Sketches(run)
    theta0, theta1, theta2 = (
        state(run / "checkpoints" / "init"),
        state(run / "checkpoints" / "final"),
        state(run2 / "checkpoints" / "final"),
    )
    names = snaps.parameter_names
    delta1 = {n: theta1[n].float() - theta0[n].float() for n in names}
    delta2 = {n: theta2[n].float() - theta0[n].float() for n in names if theta2[n].shape == theta0[n].shape}
    steps = snaps.steps
    # exact reference from the full deltas
    dots = np.zeros((len(steps), 2))
    norm_sq = np.zeros(len(steps))
    for i, (_r, d) in enumerate(snaps.iter_deltas()):
        d = {n: t.float() for n, t in d.items()}
        dots[i] = [_dot(d, delta1), _dot(d, delta2)]
        norm_sq[i] = _dot(d, d)
    gram_dirs = np.array([[_dot(a, b) for b in (delta1, delta2)] for a in (delta1, delta2)])
    exact = project(dots, norm_sq, gram_dirs)
    exact_pca = pca_from_gram(exact_gram(run, steps))["explained_variance_ratio"]
    cosine = gram_dirs[0, 1] / np.sqrt(gram_dirs[0, 0] * gram_dirs[1, 1])
    n_params = sum(int(np.prod(p["shape"])) for p in snaps.meta["parameters"])
    print(
        f"{len(steps)} steps, {n_params:,} parameters; full float16 delta "
        f"{snaps.meta['bytes_per_snapshot'] / 1e6:.1f} MB/step; "
        f"cos(δ1, δ2) = {cosine:.3f}; exact PCA top-2 explained variance ratio {exact_pca}"
    )
    print(
        f"norm_sq: callback (float32 delta) vs float16 deltas, max relative diff "
        f"{np.nanmax(np.abs(sk.norm_sq - norm_sq) / np.where(norm_sq > 0, norm_sq, np.nan)):.2e} (v = 0 at "
        "step 1: the warm-up starts at lr 0)"
    )
    anchors = list(range(args.anchor_every, steps[-1] + 1, args.anchor_every)) + [steps[-1]]
    results = {
        "steps": len(steps),
        "parameters": n_params,
        "cos_delta1_delta2": cosine,
        "exact_pca_ratio": exact_pca,
        "anchor_every": args.anchor_every,
        "by_buckets": {},
    }
    print(
        "\n| k | bytes/step | route | max abs error α_t | max abs error β_t | max abs error lstsq (a, b) | "
        "max abs error PCA top-2 ratio | max α stderr bound |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for k in [int(x) for x in args.buckets.split(",")]:
        for route, anchor in (("plain", None), (f"anchored every {args.anchor_every}", anchors)):
            errs = {"alpha": 0.0, "beta": 0.0, "lstsq": 0.0, "pca": 0.0, "bound": 0.0}
            for seed in range(args.seeds):
                target = work / f"sketch_k{k}_s{seed}"
                if k == sk.buckets and seed == sk.seed:
                    target = sk.directory  # the callback's own sketch
                elif not (target / "index.jsonl").exists():
                    offline_sketch(run, target, k, seed)
                # anchors need the run's full snapshots: place the sketch directory's view on the run
                est = sketched_projection_at(run, target, delta1, delta2, anchor)
                errs["alpha"] = max(errs["alpha"], float(np.max(np.abs(est["alpha"] - exact["alpha"]))))
                errs["beta"] = max(errs["beta"], float(np.max(np.abs(est["beta"] - exact["beta"]))))
                errs["lstsq"] = max(errs["lstsq"], float(np.max(np.abs(est["lstsq"] - exact["lstsq"]))))
                errs["bound"] = max(errs["bound"], float(np.max(est["alpha_stderr"])))
                g = sketched_gram_at(run, target, anchor)
                ratio = pca_from_gram(g)["explained_variance_ratio"]
                errs["pca"] = max(errs["pca"], float(np.max(np.abs(np.array(ratio) - np.array(exact_pca)))))
            results["by_buckets"].setdefault(str(k), {})[route] = errs
            print(
                f"| 2^{int(np.log2(k))} | {4 * k / 2**20:.2f} MiB | {route} | {errs['alpha']:.2e} | "
                f"{errs['beta']:.2e} | "
                f"{errs['lstsq']:.2e} | {errs['pca']:.2e} | {errs['bound']:.2e} |"
            )
    # the callback's per-step cost of the sketch (index_add over every parameter), this CPU
    cs = sk.sketcher().prepare()
    d = {n: t.float() for n, t in snaps.delta(steps[-1]).items()}
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        acc = cs.accumulator(torch.float32)
        for n, t in d.items():
            cs.add(acc, n, t)
        cs.finish(acc)
        times.append(time.perf_counter() - t0)
    results["sketch_seconds_per_step"] = float(np.median(times))
    print(
        f"\nsketch cost per step (k=2^18, {n_params:,} parameters, this CPU): {np.median(times):.3f} s "
        "(median of 5)"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


def _view(run: Path, sketch: Path) -> Path:
    """A run-directory view whose sketches/ is `sketch` (its snapshots/ and checkpoints/ are the run's)."""
    view = sketch.parent / f"{sketch.name}_view"
    view.mkdir(exist_ok=True)
    for name, target in (
        ("snapshots", run / "snapshots"),
        ("checkpoints", run / "checkpoints"),
        ("sketches", sketch),
    ):
        link = view / name
        if not link.exists():
            link.symlink_to(target.resolve())
    return view


def sketched_projection_at(run, sketch, delta1, delta2, anchors):
    return sketched_projection(_view(run, sketch), delta1, delta2, anchors=anchors if anchors else None)


def sketched_gram_at(run, sketch, anchors):
    return sketched_gram(_view(run, sketch), anchors=anchors if anchors else None)["gram"]


if __name__ == "__main__":
    main()
