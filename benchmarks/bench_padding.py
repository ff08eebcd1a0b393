"""What the padding of the evaluation batches costs a grid point, side by side (issue 32, item 1).

The examples of an evaluation set are sorted longest first; before, every `eval_batch_size` of
them made a batch padded to its longest (`min_fill=None`). `EvalSet.from_tokenized` now also ends
a batch where the next example would fill less than `min_fill` of the batch's width by more than
`slack` tokens (training/data/eval_sets.py, `MIN_FILL`, `SLACK`). This script evaluates the same
grid points with each batching, interleaved (every arm sees the same share of the host's noise),
best of the repeats:

    python benchmarks/bench_padding.py [--points 4] [--repeats 3] [--arms none,0.8/8,0.8/0,0.7/8,0.9/8]

Sets of the sizes the demo's stages use (MiniLM, SST-2, eval_batch_size 64; the seeded 128 train
examples, the first 128 or 512 dev examples): a line/plane point (128 train + 128 dev), the
replicate's plane point (128 train + 512 dev) and a full-dev point (872 dev: layers, basins).
θ1 is θ0 plus a seeded move of 1e-3 relative, so no training is needed.
Per set and arm: batches, the kernels' FLOPs and the padding's share of them (contracts/work.py's
meter), seconds per point, the speed-up over `none`, and the largest |Δ| of the per-example
losses and of J against `none` (the price: the matrix shapes change the summation order).
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path

import torch

GLUE = os.environ.get("GLUE_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=4, help="grid points per measurement")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the best time is kept")
    ap.add_argument(
        "--arms",
        default="none,0.8/8,0.8/0,0.7/8,0.9/8",
        help="min_fill/slack arms ('none': the old batching)",
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--glue-dir", default=GLUE)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    from bench_landscape import minilm_and_moves  # the sibling scripts (their directory is on sys.path)
    from bench_train import cpu_description

    from bertviz_landscape.contracts import work
    from bertviz_landscape.engine.directions import difference
    from bertviz_landscape.engine.evaluator import Evaluator
    from bertviz_landscape.training.data.eval_sets import EvalSet
    from bertviz_landscape.training.data.glue import load_glue_split
    from bertviz_landscape.training.data.tokenize import tokenize

    def arm(text: str) -> tuple[float | None, int]:
        fill, _, slack = text.strip().partition("/")
        return (None if fill == "none" else float(fill)), int(slack or 8)

    fills = [arm(a) for a in args.arms.split(",")]
    task, model, tokenizer, theta0, (theta1,) = minilm_and_moves("sst2")
    directions = difference(theta0, theta1, None, list(theta0), two_d=False)
    alphas = [i / max(1, args.points - 1) for i in range(args.points)]
    tok = {
        split: tokenize(load_glue_split(task, split, args.glue_dir, n, 0), tokenizer, 128)
        for split, n in (("train", 128), ("dev", None))
    }
    cases = {
        "line/plane point: 128 train + 128 dev": (128, 128),
        "replicate plane: 128 + 512 dev": (128, 512),
    }
    cases["full dev (layers, basins): 872 dev"] = (0, None)

    def sets(n_train, n_dev, fill_slack):
        fill, slack = fill_slack
        out = []
        for split, n in (("train", n_train), ("dev", n_dev)):
            if n == 0:
                continue
            rows = tok[split] if n is None else tok[split].select(range(min(n, len(tok[split]))))
            out.append(
                EvalSet.from_tokenized(
                    split, rows, 64, tokenizer.pad_token_id or 0, min_fill=fill, slack=slack
                )
            )
        return out

    print(f"host: {cpu_description()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"MiniLM (6 layers), SST-2, eval_batch_size 64, {len(alphas)} points, best of {args.repeats}")
    for label, (n_train, n_dev) in cases.items():
        arms = {}
        for fill in fills:
            s = sets(n_train, n_dev, fill)
            ev = Evaluator(copy.deepcopy(model), task, theta0, directions, s)
            with work.metering() as meter:
                ev.evaluate(alphas[0])  # warm-up outside the timing, and one point's counted work
            arms[fill] = {"ev": ev, "sets": s, "work": meter.entry(), "best": float("inf")}
        for _ in range(args.repeats):
            for arm in arms.values():
                start = time.perf_counter()
                arm["values"] = [arm["ev"].evaluate(a) for a in alphas]
                arm["per_example"] = {k: v.clone() for k, v in arm["ev"].last_per_example.items()}
                arm["best"] = min(arm["best"], time.perf_counter() - start)
        ref = arms[fills[0]]
        print(f"\n{label}")
        head = (
            "fill/slack",
            "batches",
            "GFLOP/pt",
            "padding",
            "s/point",
            "speed-up",
            "max|Δ loss_i|",
            "max|Δ J|",
        )
        print("  " + " ".join(f"{h:>{w}s}" for h, w in zip(head, (10, 7, 9, 8, 8, 8, 13, 9))))
        for fill, arm in arms.items():
            w = arm["work"]
            pad = 1.0 - w["flops_unpadded"] / w["flops"]
            d_ex = max(
                float((arm["per_example"][k] - ref["per_example"][k]).abs().max()) for k in ref["per_example"]
            )
            d_j = max(
                abs(v[k] - r[k])
                for v, r in zip(arm["values"], ref["values"])
                for k in r
                if k.endswith("_loss")
            )
            name = "none" if fill[0] is None else f"{fill[0]}/{fill[1]}"
            batches = sum(len(s.batches) for s in arm["sets"])
            print(
                f"  {name:>10s} {batches:7d} {w['flops'] / 1e9:9.1f} {pad:8.1%} "
                f"{arm['best'] / len(alphas):8.3f} {ref['best'] / arm['best']:7.2f}× {d_ex:13.1e} {d_j:9.1e}"
            )


if __name__ == "__main__":
    main()
