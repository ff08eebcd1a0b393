"""A roofline per demo stage: each stage's useful work against this host's measured limits.

    python benchmarks/roofline.py RESULTS_DIR [--out docs/results/roofline.md]

1. This host's limits, measured here: the fp32 matmul rate (torch.mm at 2048^3, best of 5), the
   bf16 rate where the CPU has AMX-BF16 (or the GPU bf16 kernels), and the memory bandwidth (a
   256 MB copy: bytes read + written per second, best of 5).
2. Each stage record `RESULTS_DIR/.stages/*.json` that carries its useful work (a "work" entry:
   {"flops": matrix-product FLOPs, "bytes": bytes of the memory-bound parts}) becomes one row:
   stage | work | time | fraction of the limit | what bounds it. The time at the limit of a stage
   is max(flops / matmul peak, bytes / bandwidth); the fraction is that over the measured time.
   Stages without a "work" entry are listed as not counted (issue 32: demo.py does not yet
   record it; `matmul_flops` below is what it should call, with the tokens it evaluated).

Useful work of a BERT forward pass (`matmul_flops`): per token and layer, the four attention
projections (4·h·h multiply-adds) and the feed-forward pair (2·h·f), plus attention's QKᵀ and
scores·V (2·s·h for a sequence padded to s); per sequence the pooler (h·h) and the classifier
(h·labels); two FLOPs per multiply-add. A training step is 3x its forward pass (the backward
pass is two matrix products per forward one). tests/test_roofline.py checks it against
torch.utils.flop_counter.FlopCounterMode on the tiny model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch


def matmul_flops(config, batch: int, length: int, num_labels: int = 2, train: bool = False) -> int:
    """Matrix-product FLOPs of one forward pass (x3 with `train`) of a BERT classifier with
    `config` (a transformers BertConfig) over `batch` sequences padded to `length` tokens."""
    h, f, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    tokens = batch * length
    per_layer = tokens * (4 * h * h + 2 * h * f) + batch * 2 * length * length * h  # + QKᵀ and AV
    forward = 2 * (layers * per_layer + batch * (h * h + h * num_labels))
    return 3 * forward if train else forward


def best_seconds(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def host_limits(n: int = 2048, copy_mb: int = 256) -> dict[str, float]:
    """Measured here: fp32 (and bf16 where it pays) matmul FLOP/s and memory bytes/s."""
    from bertviz_landscape.contracts.devices import bf16_support

    a, b = torch.randn(n, n), torch.randn(n, n)
    out = {"fp32_flops": 2 * n**3 / best_seconds(lambda: torch.mm(a, b))}
    if bf16_support(torch.device("cpu"))[0]:
        a16, b16 = a.bfloat16(), b.bfloat16()
        out["bf16_flops"] = 2 * n**3 / best_seconds(lambda: torch.mm(a16, b16))
    src = torch.empty(copy_mb * 2**20 // 4)
    src.fill_(1.0)
    dst = torch.empty_like(src)
    out["bytes_per_s"] = 2 * src.numel() * 4 / best_seconds(lambda: dst.copy_(src))
    return out


def rows(results: Path, limits: dict[str, float], precision: str = "fp32") -> list[dict]:
    """One row per stage record; the work from its "work" entry, else None (not counted)."""
    peak = limits[f"{precision}_flops"]
    out = []
    for path in sorted((results / ".stages").glob("*.json")):
        record = json.loads(path.read_text())
        seconds, work = float(record.get("seconds", 0.0)), record.get("work")
        row = {"stage": record.get("stage", path.stem), "seconds": seconds, "work": work}
        if work and seconds > 0:
            compute = float(work.get("flops", 0)) / peak
            memory = float(work.get("bytes", 0)) / limits["bytes_per_s"]
            row["limit_seconds"] = max(compute, memory)
            row["fraction"] = row["limit_seconds"] / seconds
            row["bound"] = "matmul" if compute >= memory else "memory"
        out.append(row)
    return out


def markdown(table: list[dict], limits: dict[str, float], precision: str = "fp32") -> str:
    lines = [
        f"Limits measured on this host: fp32 matmul {limits['fp32_flops'] / 1e9:.0f} GFLOP/s"
        + (f", bf16 {limits['bf16_flops'] / 1e9:.0f} GFLOP/s" if "bf16_flops" in limits else "")
        + f", memory {limits['bytes_per_s'] / 1e9:.1f} GB/s; fractions against the {precision} peak.",
        "",
        "| stage | work | time | fraction of the limit | what bounds it |",
        "|---|---|---|---|---|",
    ]
    for r in table:
        if r["work"] and "fraction" in r:
            w = r["work"]
            work = f"{float(w.get('flops', 0)) / 1e12:.3g} TFLOP, {float(w.get('bytes', 0)) / 1e9:.3g} GB"
            lines.append(
                f"| {r['stage']} | {work} | {r['seconds']:.1f} s | {r['fraction']:.2f} | {r['bound']} |"
            )
        else:
            lines.append(f"| {r['stage']} | not counted | {r['seconds']:.1f} s | — | — |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", type=Path, help="a results directory with .stages/*.json")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here too")
    args = parser.parse_args()
    limits = host_limits()
    if args.precision not in {k.split("_")[0] for k in limits}:
        parser.error(f"no {args.precision} matmul peak on this host")
    text = markdown(rows(args.results, limits, args.precision), limits, args.precision)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
