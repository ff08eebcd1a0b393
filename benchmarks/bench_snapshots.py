"""What the weight-snapshot callback costs a training step, against no snapshots and against the
floor its bytes imply (issue 32's targets: every 16 steps <= 3 % over none; every step within 5 %
of none + the floor).

    python benchmarks/bench_snapshots.py [--steps 40] [--repeats 3] [--every 16,1] [--dtype float16]

The demo preset (MiniLM, SST-2, batch 16, length-grouped; docs/measured/benchmarks.md "Training speed") with
validation off. In each repeat, in one process and in this order: no snapshots (A), every 16
steps, every step, the floor, no snapshots again (A/A: how far from 1.000 it lands is what order
and load alone do to a ratio). Best of the repeats (>= 3). Per arm:

- step: mean time from one step's end to the next (steps 4..N, the same batches in every arm);
- fit: Lightning's training loop per step including the writer's final flush;
- counts that do not depend on load: voluntary context switches per step (training's OpenMP
  worker sleeping between parallel regions shows here: ~1 per step when it spin-waits, ~1370
  when libgomp has stopped spinning, the constant cost of issue 32; see
  benchmarks/results/snapshot_constant_cost.txt) and native threads started during training;
- on the training thread: the callback's time per snapshot; in the writer thread: wall and CPU
  seconds per snapshot file.

The floor: the copy and write of one delta alone, outside training: the callback's delta pass
(θ_t − θ0 rounded into the file image) then the image written unbuffered and fsynced, best of 9
per repeat. Every step's target is none + floor (+5 %). With --floor-table, also the table of
what the bytes alone cost (memcpy, torch.sub, buffered vs O_DIRECT writes).

Absolute times on a shared 2-core host vary 2x with load: quote them with the load (printed).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from bench_train import cpu_description  # the sibling script (its directory is on sys.path)
from hydra import compose, initialize_config_dir

from bertviz_landscape.contracts.config import CONF_DIR
from bertviz_landscape.contracts.parameters import trainable_parameters
from bertviz_landscape.contracts.snapshots import DTYPES, write_safetensors
from bertviz_landscape.training.callbacks import WeightSnapshots
from bertviz_landscape.training.callbacks import weight_snapshots as callback_module
from bertviz_landscape.training.data.tasks import get_task
from bertviz_landscape.training.models import build_initial_model
from bertviz_landscape.training.train import train

GLUE = os.environ.get("GLUE_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"))
COMMON = [
    "experiment=demo",
    "init=pretrained",
    "logger=none",
    "trainer.limit_val_batches=0",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.accelerator=cpu",
    "callbacks.epochs.dev_predictions=false",
    "resume=false",
]
WARM_UP = 3


def best_ms(fn, repeats: int = 9) -> tuple[float, float, float]:
    """(best wall ms, median wall ms, CPU ms of the best) of fn over `repeats` calls after one warm-up."""
    fn()
    runs = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        runs.append(((time.perf_counter() - wall) * 1e3, (time.process_time() - cpu) * 1e3))
    best = min(runs)
    return best[0], statistics.median(r[0] for r in runs), best[1]


def floors(dtype: torch.dtype, workdir: Path) -> None:
    from bertviz_landscape.contracts.snapshots import SafetensorsImage, write_image

    model = build_initial_model("all-minilm-l6-v2", get_task("sst2"), "pretrained")
    named = trainable_parameters(model)
    theta0 = [p.detach().clone() for p in named.values()]
    current = [p.detach() for p in named.values()]
    with torch.no_grad():
        for p in current:
            p.add_(torch.randn_like(p), alpha=1e-3)
    n = sum(p.numel() for p in current)
    element = torch.empty((), dtype=dtype).element_size()
    flat = torch.cat([p.reshape(-1) for p in current])
    flat0, out32, out16 = flat.clone(), torch.empty_like(flat), torch.empty(n, dtype=dtype)
    image = SafetensorsImage({k: tuple(p.shape) for k, p in named.items()}, dtype)
    views = list(image.lay_out({"step": "1", "epoch": "0"}).values())
    scratch = callback_module.delta_scratch(current)
    delta_pass = callback_module.DeltaPass(current, theta0)
    task_scratch = delta_pass.scratch()
    moved = (8 + element) * n / 1e6
    print(
        f"\nfloor: {len(current)} tensors, {n / 1e6:.1f}M parameters; a snapshot reads θ_t and θ0 "
        f"({8 * n / 1e6:.0f} MB) and writes {element * n / 1e6:.0f} MB ({moved:.0f} MB moved)"
    )
    print(f"{'operation (best of 9, ms)':<58}{'best':>7}{'median':>8}{'CPU':>7}{'GB/s':>7}")
    ops = {
        f"memcpy of θ ({4 * n / 1e6:.0f} MB read + written)": (lambda: out32.copy_(flat), 8 * n),
        "torch.sub(θ_t, θ0, out=float32), flat": (lambda: torch.sub(flat, flat0, out=out32), 12 * n),
        f"cast θ float32 -> {dtype}, flat": (lambda: out16.copy_(flat), (4 + element) * n),
        f"torch.sub(θ_t, θ0, out={dtype}) per tensor (before)": (
            lambda: [torch.sub(p, p0, out=v) for v, p, p0 in zip(views, current, theta0)],
            (8 + element) * n,
        ),
        "the callback's delta pass (chunked, into the file image)": (
            lambda: callback_module.round_delta_into(views, current, theta0, scratch),
            (8 + element) * n,
        ),
        "the overlapped pass's tasks (32K-element ops), one thread": (
            lambda: callback_module.Job(delta_pass, [v.view(-1) for v in views]).finish(task_scratch),
            (8 + element) * n,
        ),
    }
    for name, (fn, nbytes) in ops.items():
        b, m, c = best_ms(fn)
        print(f"{name:<58}{b:>7.1f}{m:>8.1f}{c:>7.1f}{nbytes / b / 1e6:>7.1f}")
    tensors = image.lay_out({"step": "1", "epoch": "0"})
    target = workdir / "floor"
    target.mkdir(parents=True, exist_ok=True)
    writes = {
        "write one snapshot file, buffered (page cache)": lambda path: write_safetensors(
            path, tensors, {"step": "1", "epoch": "0"}
        ),
        "write one snapshot file, unbuffered (O_DIRECT, the callback)": lambda path: write_image(path, image),
    }
    for name, write in writes.items():
        counter = iter(range(10**6))

        def one(write=write, counter=counter):
            path = target / f"f{next(counter)}.safetensors"
            write(path)
            fd = os.open(path, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)

        b, m, c = best_ms(one, 5)
        print(f"{name + ' + fsync':<58}{b:>7.1f}{m:>8.1f}{c:>7.1f}{element * n / b / 1e6:>7.1f}")
    shutil.rmtree(target, ignore_errors=True)


def native_threads() -> set[int]:
    """Threads of this process that Python's threading does not know (OpenMP workers, ...)."""
    try:
        tids = {int(t) for t in os.listdir("/proc/self/task")}
    except OSError:  # not Linux
        return set()
    return tids - {t.native_id for t in threading.enumerate()}


class Floor:
    """The copy and write of one delta alone: the callback's delta pass into a file image, then
    the image written unbuffered (O_DIRECT) and fsynced; MiniLM's shapes, θ_t = θ0 + noise."""

    def __init__(self, dtype: torch.dtype, workdir: Path) -> None:
        from bertviz_landscape.contracts.snapshots import SafetensorsImage

        model = build_initial_model("all-minilm-l6-v2", get_task("sst2"), "pretrained")
        named = trainable_parameters(model)
        self.theta0 = [p.detach().clone() for p in named.values()]
        self.current = [p.detach() for p in named.values()]
        with torch.no_grad():
            for p in self.current:
                p.add_(torch.randn_like(p), alpha=1e-3)
        self.image = SafetensorsImage({k: tuple(p.shape) for k, p in named.items()}, dtype)
        self.views = list(self.image.lay_out({"step": "1", "epoch": "0"}).values())
        self.scratch = callback_module.delta_scratch(self.current)
        self.bytes = sum(v.numel() for v in self.views) * self.views[0].element_size()
        self.target = workdir / "floor"
        self.count = 0

    def copy(self) -> None:
        callback_module.round_delta_into(self.views, self.current, self.theta0, self.scratch)

    def write(self) -> None:
        from bertviz_landscape.contracts.snapshots import write_image

        self.target.mkdir(parents=True, exist_ok=True)
        path = self.target / f"f{self.count}.safetensors"
        self.count += 1
        write_image(path, self.image)
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        path.unlink()

    def measure(self, repeats: int = 9) -> dict[str, float]:
        """Best wall seconds of the copy and of the write; the floor is their sum (each at its
        quietest: a lower bound of what one snapshot costs when nothing overlaps)."""
        copy = best_ms(self.copy, repeats)[0] / 1e3
        write = best_ms(self.write, repeats)[0] / 1e3
        return {"copy": copy, "write": write, "floor": copy + write}


class StepClock(pl.Callback):
    """The last callback: the end of each step (wall and process CPU time, all threads), after
    every other callback's on_train_batch_end."""

    def __init__(self) -> None:
        self.ends: list[tuple[float, float]] = []
        self.fit = 0.0

    def on_train_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_fit_start(self, trainer, pl_module):
        self.native_at_start = native_threads()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.ends.append((time.perf_counter(), time.process_time(), usage.ru_nvcsw))
        self.native_later = native_threads()

    def on_train_end(self, trainer, pl_module):  # after the snapshot writer's final flush
        self.fit = time.perf_counter() - self.start


def run_arm(overrides: list[str], workdir: Path, overlap: bool = True) -> dict:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"data.glue_dir={GLUE}", *overrides])
    clock, on_thread, barrier, writes = StepClock(), [], [], []
    original_init, original_end = pl.Trainer.__init__, WeightSnapshots.on_train_batch_end
    original_before = WeightSnapshots.on_before_optimizer_step
    original_write, original_overlap = callback_module.write_snapshot, WeightSnapshots.overlap

    def with_clock(self, *args, callbacks=None, **kwargs):
        original_init(self, *args, callbacks=[*(callbacks or []), clock], **kwargs)

    def timed_end(self, trainer, *args, **kwargs):
        start, step = time.perf_counter(), trainer.global_step
        original_end(self, trainer, *args, **kwargs)
        if self._last_step == step and step > WARM_UP:  # a snapshot was taken at this step
            on_thread.append(time.perf_counter() - start)

    def timed_before(self, trainer, *args, **kwargs):  # the training thread's share of an overlapped pass
        start, pending = time.perf_counter(), self._pending is not None
        original_before(self, trainer, *args, **kwargs)
        if pending and trainer.global_step > WARM_UP:
            barrier.append(time.perf_counter() - start)

    def timed_write(*args, **kwargs):
        wall, cpu = time.perf_counter(), time.thread_time()
        original_write(*args, **kwargs)
        writes.append((time.perf_counter() - wall, time.thread_time() - cpu))

    pl.Trainer.__init__, WeightSnapshots.on_train_batch_end = with_clock, timed_end
    WeightSnapshots.on_before_optimizer_step, WeightSnapshots.overlap = timed_before, overlap
    callback_module.write_snapshot = timed_write
    try:
        result = train(cfg, workdir)
    finally:
        pl.Trainer.__init__, WeightSnapshots.on_train_batch_end = original_init, original_end
        WeightSnapshots.on_before_optimizer_step = original_before
        callback_module.write_snapshot, WeightSnapshots.overlap = original_write, original_overlap
        shutil.rmtree(workdir, ignore_errors=True)
    ends = clock.ends[WARM_UP:]
    return {
        "switches": [b[2] - a[2] for a, b in zip(ends, ends[1:])],  # voluntary context switches
        "new_threads": len(clock.native_later - clock.native_at_start),
        "steps": [b[0] - a[0] for a, b in zip(ends, ends[1:])],  # wall seconds of steps WARM_UP+2..N
        "cpu": [b[1] - a[1] for a, b in zip(ends, ends[1:])],  # process CPU seconds, all threads
        "fit": clock.fit / max(result["steps"], 1),
        "on_thread": (statistics.mean(on_thread) if on_thread else 0.0)
        + (statistics.mean(barrier) if barrier else 0.0),
        "write_wall": statistics.mean(w for w, _ in writes) if writes else 0.0,
        "write_cpu": statistics.mean(c for _, c in writes) if writes else 0.0,
        "snapshots": len(writes),
    }


def summary(runs: list[dict]) -> dict[str, float]:
    """Best of the repeats: the lowest mean step; per step, the lowest over repeats (the same
    batch in every repeat and arm: a step slowed by a burst of load in one repeat counts at its
    quietest); fit; process CPU per step."""
    per_step = [min(values) for values in zip(*(r["steps"] for r in runs))]
    return {
        "step": min(statistics.mean(r["steps"]) for r in runs),
        "per_step": statistics.mean(per_step),
        "fit": min(r["fit"] for r in runs),
        "cpu": min(statistics.mean(r["cpu"]) for r in runs),
        "switches": statistics.median(statistics.mean(r["switches"]) for r in runs),
        "new_threads": max(r["new_threads"] for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3, help="at least 3 (best of the repeats)")
    parser.add_argument("--every", default="16,1", help="every_n_steps of the snapshot arms")
    parser.add_argument("--dtype", default="float16", choices=sorted(DTYPES))
    parser.add_argument("--floor-table", action="store_true", help="also the table of byte floors")
    parser.add_argument(
        "--serial",
        action="store_true",
        help="also every step with the delta pass on the training thread (WeightSnapshots.overlap=False)",
    )
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    if args.repeats < 3:
        parser.error("--repeats must be at least 3 (issue 32: best of >= 3)")
    os.environ.setdefault("WANDB_MODE", "offline")
    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench_snapshots_"))
    print(f"bench_snapshots | {cpu_description()} | load average at start {os.getloadavg()[0]:.2f}")
    dtype = DTYPES[args.dtype]
    if args.floor_table:
        floors(dtype, root)
    floor = Floor(dtype, root)
    base = [*COMMON, f"trainer.max_steps={args.steps}"]
    arms = {"no snapshots (A)": ([*base, "callbacks.snapshots.enabled=false"], True)}
    for n in (int(x) for x in args.every.split(",")):
        overrides = [
            *base,
            f"callbacks.snapshots.every_n_steps={n}",
            f"callbacks.snapshots.dtype={args.dtype}",
        ]
        arms[f"every {n} step{'s' if n > 1 else ''}"] = (overrides, True)
        if args.serial and n == 1:
            arms["every step, serial"] = (overrides, False)
    arms["no snapshots (A/A)"] = arms["no snapshots (A)"]
    results: dict[str, list[dict]] = {arm: [] for arm in arms}
    floor_runs: list[dict[str, float]] = []
    loads = []
    for repeat in range(args.repeats):
        for i, (arm, (overrides, overlap)) in enumerate(arms.items()):
            if arm == "no snapshots (A/A)":  # the floor between the snapshot arms and the control
                floor_runs.append(floor.measure())
            results[arm].append(run_arm(overrides, root / f"r{repeat}_{i}", overlap))
            loads.append(os.getloadavg()[0])
    shutil.rmtree(root, ignore_errors=True)
    best = {arm: summary(runs) for arm, runs in results.items()}
    none = best["no snapshots (A)"]
    fl = {k: min(r[k] for r in floor_runs) for k in ("copy", "write")}
    fl["floor"] = fl["copy"] + fl["write"]
    print(
        f"\nsnapshot overhead | demo preset, steps {WARM_UP + 2}..{args.steps} of batch 16, {args.dtype} "
        f"deltas ({floor.bytes / 1e6:.0f} MB each) | arms interleaved in each of {args.repeats} repeats, "
        f"best of {args.repeats}; ratio = arm / no snapshots (A) | load average during the arms "
        f"{min(loads):.2f}..{max(loads):.2f} on {os.cpu_count()} CPUs"
    )
    print(
        f"{'arm':<20}{'step ms':>8}{'ratio':>7}{'per-step best':>14}{'ratio':>7}{'fit ms':>8}{'ratio':>7}"
        f"{'CPU ms':>8}{'vcsw/step':>10}{'+threads':>9}{'on thread':>10}{'write':>8}{'w. CPU':>8}"
        "  step ratio per repeat"
    )
    for arm, runs in results.items():
        b = best[arm]
        per_repeat = " ".join(
            f"{statistics.mean(r['steps']) / statistics.mean(n['steps']):.3f}"
            for r, n in zip(runs, results["no snapshots (A)"])
        )
        snap = [r for r in runs if r["snapshots"]]
        cols = [
            statistics.median(r[k] for r in snap) * 1e3 if snap else 0.0
            for k in ("on_thread", "write_wall", "write_cpu")
        ]
        print(
            f"{arm:<20}{b['step'] * 1e3:>8.1f}{b['step'] / none['step']:>7.3f}"
            f"{b['per_step'] * 1e3:>14.1f}{b['per_step'] / none['per_step']:>7.3f}"
            f"{b['fit'] * 1e3:>8.1f}{b['fit'] / none['fit']:>7.3f}"
            f"{b['cpu'] * 1e3:>8.1f}{b['switches']:>10.0f}{b['new_threads']:>9d}"
            f"{cols[0]:>8.1f}ms{cols[1]:>6.1f}ms{cols[2]:>6.1f}ms  [{per_repeat}]"
        )
    print(
        f"{'floor (one delta)':<20}{fl['floor'] * 1e3:>8.1f}  = copy {fl['copy'] * 1e3:.1f} ms "
        f"(delta pass, {floor.bytes / 1e6:.0f} MB out) + write {fl['write'] * 1e3:.1f} ms "
        f"(O_DIRECT + fsync), best of 9 x {args.repeats}"
    )
    print(
        "step: mean wall time from one step's end to the next; per-step best: each step's lowest over "
        "the repeats, averaged; fit: the training loop per step incl. the final flush; CPU: process CPU "
        "seconds per step, all threads; vcsw/step: voluntary context switches per step (median over "
        "repeats); +threads: native threads started during training; on thread: the training thread's "
        "time in the callback per snapshot; write / w. CPU: the writer's wall and CPU time per file"
    )
    print("\ntargets (issue 32), on the best-of step times:")
    aa = best["no snapshots (A/A)"]["step"] / none["step"]
    print(f"  A/A control: {aa:.3f} (how far order and load alone move a ratio in this run)")
    # a verdict only where the control resolves it: order and load alone moved A/A by |aa - 1|
    decidable = abs(aa - 1) <= 0.03
    for arm in best:
        if not arm.startswith("every "):
            continue
        n = 1 if arm.startswith("every step") else int(arm.split()[1])
        step = best[arm]["step"]
        if n == 1:
            limit = none["step"] + fl["floor"]
            verdict = ("met" if step <= 1.05 * limit else "NOT met") if decidable else "UNDECIDED (A/A off)"
            print(
                f"  {arm}: {step * 1e3:.1f} ms vs none + floor {limit * 1e3:.1f} ms: "
                f"{(step / limit - 1) * 100:+.1f}% (target <= +5%): {verdict}"
            )
        else:
            over = step / none["step"] - 1
            verdict = ("met" if over <= 0.03 else "NOT met") if decidable else "UNDECIDED (A/A off)"
            print(f"  {arm}: {over * 100:+.1f}% over no snapshots (target <= +3%): {verdict}")


if __name__ == "__main__":
    main()
