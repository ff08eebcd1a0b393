"""A roofline per demo stage: each stage's useful work against this host's measured limits.

    python benchmarks/roofline.py RESULTS_DIR [--out docs/measured/roofline.md] [--precision bf16]

1. This host's limits, measured here: the fp32 matmul rate (torch.mm at 2048^3, best of 5), the
   bf16 rate where the CPU has AMX-BF16 (or the GPU bf16 kernels), and the memory bandwidth (a
   256 MB copy: bytes read + written per second, best of 5).
2. Each stage record `RESULTS_DIR/.stages/*.json` with a "work" entry (written by the demo's stage
   runner: pipeline/work.py, counted by contracts/work.py while the stage ran — matrix-product
   FLOPs of the batches as the kernels ran them, padded, and over the real tokens; bytes of the
   memory-bound parts) becomes one row: stage | work | time | fraction of the limit | what bounds
   it. The time at the limit is max(flops / matmul peak, bytes / bandwidth); the fraction is that
   over the measured time; the bound is whichever term is larger. A stage that ran no model
   (figures, W&B, the report, analyses that read files) has no work: "no model pass".

`matmul_flops` (the forward pass of a BERT classifier over a padded batch, x3 for a training
step) is contracts/work.py's count; tests/test_roofline.py checks it against
torch.utils.flop_counter.FlopCounterMode on the tiny model, tests/test_work.py every stage kind.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path

import torch

from bertviz_landscape.contracts.work import PASS_MULTIPLIER, Shape, pass_flops


def matmul_flops(config, batch: int, length: int, num_labels: int = 2, train: bool = False) -> int:
    """Matrix-product FLOPs of one forward pass (x3 with `train`) of a BERT classifier with
    `config` (a transformers BertConfig) over `batch` sequences padded to `length` tokens."""
    shape = Shape(config.hidden_size, config.intermediate_size, config.num_hidden_layers, num_labels)
    forward, _ = pass_flops(shape, batch * length, batch, batch * length * length)
    return PASS_MULTIPLIER["train" if train else "forward"] * forward


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
    """One row per stage record (in the order the stages finished); its work from the "work" entry."""
    peak = limits[f"{precision}_flops"]
    records = [json.loads(p.read_text()) | {"_file": p.stem} for p in (results / ".stages").glob("*.json")]
    records.sort(key=lambda r: (str(r.get("finished", "")), r["_file"]))
    out = []
    for record in records:
        seconds, work = float(record.get("seconds", 0.0)), record.get("work")
        row = {"stage": record.get("stage", record["_file"]), "seconds": seconds, "work": work}
        if work and seconds > 0 and (work.get("flops") or work.get("bytes")):
            compute = float(work.get("flops", 0)) / peak
            memory = float(work.get("bytes", 0)) / limits["bytes_per_s"]
            row["limit_seconds"] = max(compute, memory)
            row["fraction"] = row["limit_seconds"] / seconds
            row["bound"] = "matmul" if compute >= memory else "memory"
        out.append(row)
    return out


def _amount(value: float, unit: str) -> str:
    for scale, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def _fraction(value: float) -> str:
    return f"{value:.2f}" if value >= 0.1 else f"{value:.1g}"


def describe_work(work: dict) -> str:
    """ "1.6 TFLOP (12 % padding), 3.1 GB" — FLOPs as the kernels ran them, padding's share, bytes."""
    flops, real = float(work.get("flops", 0)), float(work.get("flops_unpadded", work.get("flops", 0)))
    parts = []
    if flops:
        padding = f" ({100 * (1 - real / flops):.0f} % padding)" if real < flops else ""
        parts.append(_amount(flops, "FLOP") + padding)
    if work.get("bytes"):
        parts.append(_amount(float(work["bytes"]), "B"))
    return ", ".join(parts)


def markdown(table: list[dict], limits: dict[str, float], precision: str = "fp32", host: str = "") -> str:
    lines = [
        (f"Host: {host}. " if host else "")
        + f"Limits measured on it: fp32 matmul {limits['fp32_flops'] / 1e9:.0f} GFLOP/s"
        + (f", bf16 {limits['bf16_flops'] / 1e9:.0f} GFLOP/s" if "bf16_flops" in limits else "")
        + f", memory {limits['bytes_per_s'] / 1e9:.1f} GB/s; fractions against the {precision} peak.",
        "",
        "| stage | work | time | fraction of the limit | what bounds it |",
        "|---|---|---|---|---|",
    ]
    for r in table:
        if "fraction" in r:
            lines.append(
                f"| {r['stage']} | {describe_work(r['work'])} | {r['seconds']:.1f} s "
                f"| {_fraction(r['fraction'])} | {r['bound']} |"
            )
        else:
            what = "not counted" if r["work"] is None else "no model pass"
            lines.append(f"| {r['stage']} | {what} | {r['seconds']:.1f} s | — | — |")
    return "\n".join(lines) + "\n"


def host_line() -> str:
    """The CPU model, its AMX/bf16 flags and the core count (the table's limits are this host's)."""
    import os
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    extras = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    return f"{model}, {os.cpu_count()} cores" + (f" ({', '.join(extras)})" if extras else "")


def page(table_text: str, results: Path, label: str | None = None) -> str:
    """docs/measured/roofline.md: what the table is, where it came from, the table."""
    return (
        "# Roofline per stage\n\n"
        "Each stage's useful work — matrix-product FLOPs of the batches it evaluated, as the kernels ran "
        "them (padded), and the bytes of its memory-bound parts (AdamW's state, the weight update per "
        "grid point, snapshot deltas) — against this host's measured matmul peak and memory bandwidth. "
        "The work is counted while the stage runs (`bertviz_landscape/contracts/work.py`; what each "
        "stage kind counts: `bertviz_landscape/pipeline/work.py`) and kept in its record "
        "`.stages/<stage>.json`; the limits are measured when the table is made. Fraction of the limit = "
        "max(FLOPs / peak, bytes / bandwidth) / measured time; what bounds it is the larger term.\n\n"
        f"Written by `python benchmarks/roofline.py {results} --out docs/measured/roofline.md` "
        f"({time.strftime('%Y-%m-%d')}{'; ' + label if label else ''}); `make bench` writes it from "
        "the demo's results.\n\n" + table_text
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", type=Path, help="a results directory with .stages/*.json")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--out", type=Path, default=None, help="write the table's docs page here too")
    parser.add_argument("--label", default=None, help="what the results directory is (said on the page)")
    args = parser.parse_args()
    limits = host_limits()
    if args.precision not in {k.split("_")[0] for k in limits}:
        parser.error(f"no {args.precision} matmul peak on this host")
    text = markdown(rows(args.results, limits, args.precision), limits, args.precision, host_line())
    print(text)
    if args.out:
        args.out.write_text(page(text, args.results, args.label))


if __name__ == "__main__":
    main()
