"""The weight update per grid point, before and after issue 32's fusion, side by side in one run.

Before: p ← c; p += α·δ1; p += β·δ2 (three passes, 32 bytes a parameter). After (the engine's
`Evaluator.set_point`): p = c + α·δ1 in one pass, then p += β·δ2 (24 bytes a parameter), the same
add kernel, so the same bits. On the real MiniLM with the demo's plane data (SST-2, 128 train +
128 dev examples, eval batch 64): the update alone and a whole grid point, interleaved, best of
--repeats, wall and CPU seconds; every value of every point compared between the two (must be
identical); and this host's CPU steal over the run.

    python benchmarks/bench_weight_update.py [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import time

import torch


def old_set_point(ev, alpha: float, beta: float = 0.0) -> None:
    """The engine's set_point before the fusion (issue 32), kept here as the baseline."""
    with torch.no_grad():
        target = ev._scratch if ev._scratch is not None else ev._params
        torch._foreach_copy_(target, ev._center)
        if alpha != 0.0:
            torch._foreach_add_(target, ev._dx, alpha=float(alpha))
        if ev._dy is not None and beta != 0.0:
            torch._foreach_add_(target, ev._dy, alpha=float(beta))
        if ev._scratch is not None:
            torch._foreach_copy_(ev._params, ev._scratch)


def steal_ticks() -> int:
    with open("/proc/stat") as f:
        return int(f.readline().split()[8])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--glue-dir", default=os.environ.get("GLUE_DIR", "/work/shared/data/glue"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    from bench_landscape import minilm_and_moves  # the sibling script (its directory is on sys.path)

    from bertviz_landscape.engine.directions import difference
    from bertviz_landscape.engine.evaluator import Evaluator
    from bertviz_landscape.training.data.eval_sets import EvalSet
    from bertviz_landscape.training.data.glue import load_glue_split
    from bertviz_landscape.training.data.tokenize import tokenize

    task, model, tokenizer, theta0, (theta1, theta2) = minilm_and_moves("sst2", 2)
    sets = [
        EvalSet.from_tokenized(
            split,
            tokenize(load_glue_split(task, split, args.glue_dir, 128, 0), tokenizer, 128),
            64,
            tokenizer.pad_token_id,
            "cpu",
        )
        for split in ("train", "dev")
    ]
    ev = Evaluator(model, task, theta0, difference(theta0, theta1, theta2, list(theta0), two_d=True), sets)
    new_set_point = ev.set_point
    arms = {"before": lambda a, b: old_set_point(ev, a, b), "after": new_set_point}
    points = [(0.5, -1.0), (1.5, 0.5), (0.0, 1.0)]  # both axes, both axes, one axis

    def timed(fn):
        c0, t0 = time.process_time(), time.perf_counter()
        out = fn()
        return time.perf_counter() - t0, time.process_time() - c0, out

    best = {f"{k} {what}": (float("inf"), float("inf")) for k in arms for what in ("update", "point")}
    values: dict[str, list] = {k: [] for k in arms}
    steal0 = steal_ticks()
    for _ in range(args.repeats):
        for key, set_point in arms.items():
            ev.set_point = set_point
            wall, cpu, _ = timed(lambda fn=set_point: [fn(a, b) for a, b in points])
            best[f"{key} update"] = min(best[f"{key} update"], (wall / len(points), cpu / len(points)))
            wall, cpu, out = timed(lambda: [ev.evaluate(a, b) for a, b in points])
            best[f"{key} point"] = min(best[f"{key} point"], (wall / len(points), cpu / len(points)))
            values[key].append(out)
    steal = (steal_ticks() - steal0) / os.sysconf("SC_CLK_TCK")
    same = all(v == values["before"][0] for k in arms for v in values[k])
    largest = max(
        abs(after[key] - before[key])
        for b_run, a_run in zip(values["before"], values["after"])
        for before, after in zip(b_run, a_run)
        for key in before
        if before[key] == before[key]  # not NaN
    )
    for key, (wall, cpu) in best.items():
        print(f"{key:>14}: {wall * 1e3:8.1f} ms wall, {cpu * 1e3:8.1f} ms CPU (best of {args.repeats})")
    for what in ("update", "point"):
        b, a = best[f"before {what}"], best[f"after {what}"]
        print(f"before/after {what}: {b[0] / a[0]:.3f} wall, {b[1] / a[1]:.3f} CPU")
    print(f"values identical at every point and repeat: {same} (largest difference {largest:.3g})")
    print(f"CPU steal over the run: {steal:.1f} s; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
