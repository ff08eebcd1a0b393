"""Record θ_t − θ0 every n optimiser steps (and, optionally, its CountSketch at every step),
written in the background.

The delta is computed on the training thread (on a CPU one pass over memory, θ_t − θ0 rounded
chunk by chunk through a small cache-resident float32 scratch straight into the snapshot
file's own bytes, a reused page-aligned `SafetensorsImage`; on an accelerator one fused foreach
subtraction there, then one copy off it), then handed to a writer thread through a bounded
queue, which writes the image unbuffered (O_DIRECT) so disk I/O overlaps the next steps and
costs the CPU almost nothing; when the writer falls behind, the queue applies back-pressure
instead of buffering snapshots without limit. Format: see `bertviz_landscape.contracts.snapshots`.

With a sketch requested (``callbacks.snapshots.sketch.enabled=true``), every optimiser step
also records a k-bucket CountSketch of the float32 delta and its exact squared norm
(`bertviz_landscape.contracts.sketches`): 4·k bytes per step whatever the model, computed on the
training device with one ``scatter_add_`` per parameter (8 bytes of hash index per parameter
stay on the device), while full deltas are kept every
``every_n_steps`` steps (for PCA directions, roll-backs and anchoring the sketch estimates).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import queue
import shutil
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from bertviz_landscape.contracts import work
from bertviz_landscape.contracts.atomic import write_json_atomic
from bertviz_landscape.contracts.errors import BadInput, OutputError
from bertviz_landscape.contracts.parameters import trainable_parameters
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.contracts.sketches import CountSketch, SketchWriter
from bertviz_landscape.contracts.sketches import write_meta as write_sketch_meta
from bertviz_landscape.contracts.snapshots import (
    DTYPES,
    FORMAT,
    SafetensorsImage,
    Snapshots,
    truncate_snapshots,
    write_snapshot,
)

log = logging.getLogger("bertviz_landscape.contracts.snapshots")

# float32 elements per chunk of the delta pass: its 1 MiB scratch stays in a core's L2 (2 MiB on
# the 2-core EPYC VM), so θ_t and θ0 are read from memory once and only the rounded delta is
# written back; whole-tensor torch.sub(out=float16) instead allocates a float32 temporary per
# tensor (fresh pages every step: 63 ms vs 13 ms for MiniLM's 22.7M parameters, measured)
CHUNK = 1 << 18
SMALL = 1 << 14  # tensors up to this many elements are subtracted together (one foreach call)


def delta_scratch(params: list[torch.Tensor]) -> dict[torch.dtype, torch.Tensor]:
    """The delta pass's scratch: CHUNK elements per parameter dtype (on the parameters' device)."""
    return {p.dtype: torch.empty(CHUNK, dtype=p.dtype, device=p.device) for p in params}


def round_delta_into(
    out: list[torch.Tensor],
    current: list[torch.Tensor],
    theta0: list[torch.Tensor],
    scratch: dict[torch.dtype, torch.Tensor],
) -> None:
    """out[i] = current[i] − theta0[i], computed in the parameters' dtype and rounded once to
    out's dtype: bit for bit ``(current[i] - theta0[i]).to(out[i].dtype)``, in one pass over
    memory with no allocation of the tensors' size (large tensors go chunk by chunk through the
    cache-resident `scratch`; small ones in one foreach subtraction)."""
    small = [i for i, p in enumerate(current) if p.numel() <= SMALL and out[i].dtype != p.dtype]
    if small:
        diffs = torch._foreach_sub([current[i] for i in small], [theta0[i] for i in small])
        torch._foreach_copy_([out[i] for i in small], diffs)
    done = set(small)
    for i, (o, p, p0) in enumerate(zip(out, current, theta0)):
        if i in done:
            continue
        if o.dtype == p.dtype:  # no rounding: the subtraction writes the output directly
            torch.sub(p, p0, out=o)
            continue
        flat, flat0, target = p.reshape(-1), p0.reshape(-1), o.view(-1)
        buffer = scratch[p.dtype]
        n = flat.numel()
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            chunk = buffer[: stop - start]
            torch.sub(flat[start:stop], flat0[start:stop], out=chunk)
            target[start:stop].copy_(chunk)


# the overlapped pass: ops of PIECE elements stay under ATen's grain size (32768), so each runs
# on the thread that calls it (a helper thread's larger op would start a second OpenMP team
# beside training's, 4 threads on 2 cores); GROUP pieces make one task (three foreach calls).
# The helper thread must never run a larger op, not even once: one OpenMP team beside training's
# makes libgomp count more threads than cores, and from then on it stops spin-waiting in EVERY
# team, so training's worker thread sleeps on a futex at the end of each parallel region and is
# woken at the start of the next (~1370 voluntary context switches per demo step instead of ~1:
# a constant cost per step, there whether a snapshot is taken every step or every 16; issue 32,
# benchmarks/results/snapshot_constant_cost.txt). torch.empty is such an op under
# torch.use_deterministic_algorithms (it fills the new memory with NaN in parallel), so the
# helper's scratch is allocated on the training thread (`WeightSnapshots.on_train_start`).
PIECE = 32000
GROUP = 8


class DeltaPass:
    """θ_t − θ0 rounded into a file image's views as tasks that two threads share: a helper
    thread starts on them while the next step's forward and backward run, and the training
    thread takes whatever is left before that step's optimiser moves θ (`Job.work`).

    A task copies its pieces of θ_t into a cache-resident scratch, subtracts θ0 there (in the
    parameters' dtype) and rounds into the image: bit for bit ``(θ_t - θ0).to(dtype)``.
    """

    def __init__(self, current: list[torch.Tensor], theta0: list[torch.Tensor]) -> None:
        self.tasks: list[tuple[torch.dtype, list, list[torch.Tensor], list[torch.Tensor]]] = []
        for dtype in sorted({p.dtype for p in current}, key=str):
            pieces = [
                (i, start, min(start + PIECE, p.numel()))
                for i, p in enumerate(current)
                if p.dtype == dtype
                for start in range(0, p.numel(), PIECE)
            ]
            for g in range(0, len(pieces), GROUP):
                group = pieces[g : g + GROUP]
                sources = [current[i].reshape(-1)[a:b] for i, a, b in group]
                sources0 = [theta0[i].reshape(-1)[a:b] for i, a, b in group]
                self.tasks.append((dtype, group, sources, sources0))

    def scratch(self) -> list[list[torch.Tensor]]:
        """One thread's scratch: per task, views of GROUP·PIECE elements of its dtype. Call it on
        the training thread, also for the helper's (the allocation may run in parallel: above)."""
        buffers = {d: torch.empty(GROUP * PIECE, dtype=d) for d, *_ in self.tasks}
        views = []
        for dtype, group, *_ in self.tasks:
            offsets = [0]
            for _, a, b in group:
                offsets.append(offsets[-1] + b - a)
            views.append([buffers[dtype][x:y] for x, y in zip(offsets, offsets[1:])])
        return views

    def run(self, k: int, out: list[torch.Tensor], scratch: list[list[torch.Tensor]]) -> None:
        """Task k into `out` (the image's flattened views, in parameter order)."""
        dtype, group, sources, sources0 = self.tasks[k]
        targets = [out[i][a:b] for i, a, b in group]
        if targets[0].dtype == dtype:  # no rounding: subtract in the image itself
            torch._foreach_copy_(targets, sources)
            torch._foreach_sub_(targets, sources0)
            return
        torch._foreach_copy_(scratch[k], sources)
        torch._foreach_sub_(scratch[k], sources0)
        torch._foreach_copy_(targets, scratch[k])


class Job:
    """One snapshot's `DeltaPass` into one image: threads calling `work` take tasks in turn
    (``next`` of an itertools.count is atomic under the GIL); `done` is set when all finished."""

    def __init__(self, delta_pass: DeltaPass, out: list[torch.Tensor]) -> None:
        self.delta_pass, self.out = delta_pass, out
        self._next = itertools.count()
        self._left = len(delta_pass.tasks)
        self._lock = threading.Lock()
        self.done = threading.Event()
        self.error: BaseException | None = None
        if not self._left:
            self.done.set()

    def work(self, scratch: list[list[torch.Tensor]]) -> None:
        n = len(self.delta_pass.tasks)
        while (k := next(self._next)) < n:
            try:
                self.delta_pass.run(k, self.out, scratch)
            except BaseException as err:  # re-raised on the training thread by `finish`
                self.error = self.error or err
            with self._lock:
                self._left -= 1
                if not self._left:
                    self.done.set()

    def finish(self, scratch: list[list[torch.Tensor]]) -> None:
        """The training thread's share: the tasks nobody has taken, then wait for the rest."""
        self.work(scratch)
        self.done.wait()
        if self.error is not None:
            raise self.error


class SnapshotBudgetError(BadInput):
    """The projected size of the snapshots exceeds the free disk space or the budget."""


class SnapshotConfigError(BadInput):
    """callbacks.snapshots settings that cannot work (a dtype that is not a float, n < 1)."""


@dataclass(frozen=True)
class SketchRequest:
    """callbacks.snapshots.sketch when enabled: k buckets and the hash seed (`contracts.sketches`)."""

    buckets: int
    seed: int


@dataclass(frozen=True)
class SnapshotRequest:
    """callbacks.snapshots as conf/callbacks/default.yaml says it (the defaults live there only):
    built once by `from_config`, validated when it is made."""

    every_n_steps: int
    dtype: str  # of the stored delta: a key of DTYPES
    max_disk_gb: float | None
    min_free_gb: float
    sketch: SketchRequest | None  # None: no per-step sketch
    overlap: bool | None = None  # the CPU delta pass on a helper thread; None: auto (`overlaps`)

    def __post_init__(self) -> None:
        if self.sketch is not None and self.sketch.buckets < 1:
            raise SnapshotConfigError(
                f"callbacks.snapshots.sketch.buckets must be >= 1, got {self.sketch.buckets}"
            )
        if self.every_n_steps < 1:
            raise SnapshotConfigError(
                f"callbacks.snapshots.every_n_steps must be >= 1, got {self.every_n_steps}"
            )
        if self.dtype not in DTYPES:
            raise SnapshotConfigError(
                f"callbacks.snapshots.dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}"
            )

    @classmethod
    def from_config(cls, snap: Mapping[str, Any]) -> SnapshotRequest:
        """From a composed ``callbacks.snapshots`` section (every key present: the YAML has them all)."""
        sketch = snap["sketch"]
        return cls(
            every_n_steps=int(snap["every_n_steps"]),
            dtype=snap["dtype"],
            max_disk_gb=None if snap["max_disk_gb"] is None else float(snap["max_disk_gb"]),
            min_free_gb=float(snap["min_free_gb"]),
            sketch=SketchRequest(int(sketch["buckets"]), int(sketch["seed"])) if sketch["enabled"] else None,
            overlap=overlap_setting(snap.get("overlap", "auto")),
        )


def overlap_setting(value: Any) -> bool | None:
    """callbacks.snapshots.overlap: true | false | auto (None)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("auto", "true", "false"):
        return {"auto": None, "true": True, "false": False}[value.strip().lower()]
    raise SnapshotConfigError(f"callbacks.snapshots.overlap must be true, false or auto, got {value!r}")


def overlaps(setting: bool | None, processes: int = 1) -> bool:
    """Whether the CPU delta pass runs on a helper thread: as set, else only where a CPU is free
    beyond torch's intra-op threads in each of this node's `processes` training processes (DDP
    on the CPU: one per device). Measured on a 2-core host (docs/measured/benchmarks.md): with
    torch's two threads the helper takes a core training's OpenMP team waits on, and every-step
    snapshots cost 1.36x a step overlapped vs 1.18x on the training thread; with one thread and
    a core free, 1.01x overlapped vs 1.12x."""
    if setting is not None:
        return setting
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return cpus > torch.get_num_threads() * max(1, processes)


class WeightSnapshots(pl.Callback):
    # on a CPU without sketches, the delta pass overlaps the next step (`DeltaPass`) when True;
    # False: it runs on the training thread before on_train_batch_end returns; None: the
    # request's callbacks.snapshots.overlap (`overlaps`). Tests and benchmarks set it to force one.
    overlap: bool | None = None

    def __init__(
        self,
        request: SnapshotRequest,
        dirpath: str | os.PathLike | None = None,
        sketch_dirpath: str | os.PathLike | None = None,
        theta0_relpath: str | None = None,
        queue_size: int = 4,
    ) -> None:
        """`request` says what to record; the paths default to the run directory's (`RunDir`)."""
        self.dirpath = Path(dirpath) if dirpath else None
        self.every_n_steps = request.every_n_steps
        self.dtype = DTYPES[request.dtype]
        self.dtype_name = request.dtype
        self.max_disk_gb = request.max_disk_gb
        self.min_free_gb = request.min_free_gb
        self.overlap_request = request.overlap
        self.queue_size = queue_size
        self.theta0_relpath = theta0_relpath
        self._theta0: list[torch.Tensor] = []
        self._names: list[str] = []
        self._params: list[torch.Tensor] = []
        self._queue: queue.Queue | None = None
        self._free: queue.SimpleQueue = queue.SimpleQueue()  # file images the writer is done with
        self._scratch: dict[torch.dtype, torch.Tensor] = {}
        self._delta_pass: DeltaPass | None = None
        self._delta_scratch: list[list[torch.Tensor]] = []
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()  # Jobs for the delta helper thread
        self._delta_thread: threading.Thread | None = None
        self._pending: tuple | None = None  # (job, step, epoch, loss, image) not yet queued for writing
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._last_step = 0
        self._last_epoch = 0
        self.sketch_buckets = request.sketch.buckets if request.sketch else None
        self.sketch_seed = request.sketch.seed if request.sketch else None
        self.sketch_dirpath = Path(sketch_dirpath) if sketch_dirpath else None
        self._sketch: CountSketch | None = None
        self._sketch_writer: SketchWriter | None = None
        self._last_sketch_step = 0
        self._active = True

    # -- set-up ---------------------------------------------------------------------------
    def projected_bytes(self, trainer: pl.Trainer, bytes_per_snapshot: int) -> int:
        return self.projected_total(
            int(trainer.estimated_stepping_batches), bytes_per_snapshot, len(self._params)
        )

    def projected_total(self, total_steps: int, bytes_per_snapshot: int, num_tensors: int = 0) -> int:
        # one file every n steps, plus the final step when n does not divide the total; every step a sketch
        # row (4·k bytes), a row of per-parameter norms (8 bytes per tensor) and an index line
        sketches = (
            total_steps * (4 * self.sketch_buckets + 8 * num_tensors + 128) if self.sketch_buckets else 0
        )
        return math.ceil(total_steps / self.every_n_steps) * bytes_per_snapshot + sketches

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._active = trainer.is_global_zero  # DDP: θ is the same on every rank; rank 0 records it
        if not self._active:
            return
        run = RunDir(trainer.default_root_dir)
        if self.dirpath is None:
            self.dirpath = run.snapshots
        if self.theta0_relpath is None:  # where θ0 sits relative to the snapshots (meta.json "theta0")
            self.theta0_relpath = os.path.relpath(run.theta0, self.dirpath.resolve())
        self.dirpath.mkdir(parents=True, exist_ok=True)
        model = getattr(pl_module, "model", pl_module)
        named = list(trainable_parameters(model).items())
        self._names = [n for n, _ in named]
        self._params = [p for _, p in named]
        if trainer.global_step == 0:
            self._theta0 = [p.detach().clone() for p in self._params]
            truncate_snapshots(self.dirpath, 0)  # a fresh start replaces any earlier trajectory
        else:  # resumed: θ0 is the run's initial checkpoint, and later snapshots are redone
            self._theta0 = self.load_theta0(named)
            truncate_snapshots(self.dirpath, trainer.global_step)
            self._last_step = trainer.global_step
        element = torch.empty((), dtype=self.dtype).element_size()
        per_snapshot = sum(p.numel() for p in self._params) * element
        self.check_disk(self.projected_bytes(trainer, per_snapshot))
        write_json_atomic(
            self.dirpath / "meta.json",
            {
                "format": FORMAT,
                "dtype": self.dtype_name,
                "every_n_steps": self.every_n_steps,
                "theta0": self.theta0_relpath,
                "parameters": [{"name": n, "shape": list(p.shape)} for n, p in named],
                "bytes_per_snapshot": per_snapshot,
            },
        )
        if self.sketch_buckets:
            self._start_sketch(run, named, trainer.global_step)
        if self._params[0].device.type == "cpu":
            self._scratch = delta_scratch(self._params)
            setting = self.overlap if self.overlap is not None else self.overlap_request
            processes = int(getattr(trainer, "num_devices", 1) or 1)
            if overlaps(setting, processes) and not self.sketch_buckets:
                self._delta_pass = DeltaPass([p.detach() for p in self._params], self._theta0)
                self._delta_scratch = self._delta_pass.scratch()
                self._jobs = queue.SimpleQueue()
                self._delta_thread = threading.Thread(  # its scratch made here, on this thread
                    target=self._delta_loop,
                    args=(self._delta_pass.scratch(),),
                    name="weight-snapshot-deltas",
                    daemon=True,
                )
                self._delta_thread.start()
        self._queue = queue.Queue(maxsize=self.queue_size)
        self._thread = threading.Thread(target=self._write_loop, name="weight-snapshots", daemon=True)
        self._thread.start()

    def _start_sketch(self, run: RunDir, named: list, global_step: int) -> None:
        if self.sketch_dirpath is None:
            self.sketch_dirpath = run.sketches
        shapes = {n: tuple(p.shape) for n, p in named}
        self._sketch = CountSketch(
            shapes, self.sketch_buckets, self.sketch_seed, device=self._params[0].device
        ).prepare()
        write_sketch_meta(
            self.sketch_dirpath,
            shapes,
            self.sketch_buckets,
            self.sketch_seed,
            os.path.relpath(run.theta0, self.sketch_dirpath.resolve()),
        )
        self._sketch_writer = SketchWriter(self.sketch_dirpath, self.sketch_buckets, len(shapes))
        self._sketch_writer.truncate(
            global_step
        )  # a fresh start replaces an earlier trajectory; a resumed one redoes later steps
        self._last_sketch_step = global_step

    def load_theta0(self, named: list[tuple[str, torch.nn.Parameter]]) -> list[torch.Tensor]:
        theta0 = Snapshots(self.dirpath).theta0()
        return [theta0[n].to(device=p.device, dtype=p.dtype) for n, p in named]

    def check_budget(self, model: torch.nn.Module, total_steps: int) -> None:
        """The disk check of `on_train_start`, before anything of the run is written."""
        element = torch.empty((), dtype=self.dtype).element_size()
        params = trainable_parameters(model)
        per_snapshot = sum(p.numel() for p in params.values()) * element
        projected = self.projected_total(total_steps, per_snapshot, len(params))
        log.info(
            "snapshots: ~%s in %s (%d of %d steps × %.1f MB: every %d steps, %s%s); "
            "callbacks.snapshots.every_n_steps=<n> changes it",
            f"{projected / 1e9:.2f} GB" if projected >= 1e9 else f"{projected / 1e6:.0f} MB",
            self.dirpath,
            math.ceil(total_steps / self.every_n_steps),
            total_steps,
            per_snapshot / 1e6,
            self.every_n_steps,
            self.dtype_name,
            ", + a sketch every step" if self.sketch_buckets else "",
        )
        self.check_disk(projected)

    def check_disk(self, projected: int) -> None:
        gb = projected / 1e9
        if self.max_disk_gb is not None and gb > self.max_disk_gb:
            raise SnapshotBudgetError(
                f"snapshots would take {gb:.2f} GB in {self.dirpath}, over the budget "
                f"callbacks.snapshots.max_disk_gb={self.max_disk_gb}; raise the budget, snapshot less often "
                "(callbacks.snapshots.every_n_steps) or store a smaller dtype (callbacks.snapshots.dtype)"
            )
        probe = next(p for p in (self.dirpath, *self.dirpath.resolve().parents) if p.exists())
        free = shutil.disk_usage(probe).free
        if projected + self.min_free_gb * 1e9 > free:
            raise SnapshotBudgetError(
                f"snapshots would take {gb:.2f} GB in {self.dirpath} but only {free / 1e9:.2f} GB is free "
                f"(keeping {self.min_free_gb} GB spare); snapshot less often "
                "(callbacks.snapshots.every_n_steps) "
                "or write elsewhere"
            )

    # -- per step ---------------------------------------------------------------------------
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not self._active:
            return
        step = trainer.global_step
        full = step != self._last_step and step % self.every_n_steps == 0
        sketch = self._sketch is not None and step != self._last_sketch_step
        if not (full or sketch):
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self._last_epoch = trainer.current_epoch
        self._record(step, trainer.current_epoch, None if loss is None else float(loss), full, sketch)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        # the optimiser is about to move θ: the last snapshot's delta pass must be done with it
        self._finish_pending()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not self._active:
            return
        # every snapshot of the epoch is on disk before an epoch checkpoint says the epoch is done
        self._finish_pending()
        self._queue.join()
        self._raise_writer_error()

    def on_train_end(self, trainer, pl_module) -> None:
        if not self._active:
            return
        # the last snapshot is θ1 whatever every_n_steps is
        step = trainer.global_step
        full = bool(step) and step != self._last_step
        sketch = self._sketch is not None and bool(step) and step != self._last_sketch_step
        if full or sketch:
            self._record(step, self._last_epoch, None, full, sketch)
        self._finish_pending()
        self._close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._close(raise_errors=False)

    def _record(
        self, step: int, epoch: int, loss: float | None, full: bool = True, sketch: bool = False
    ) -> None:
        self._raise_writer_error()
        self._finish_pending()
        with torch.no_grad():
            current = [p.detach() for p in self._params]
            deltas = torch._foreach_sub(current, self._theta0) if sketch else None
            if sketch:
                acc = self._sketch.accumulator(torch.float32)
                for n, d in zip(self._names, deltas):
                    self._sketch.add(acc, n, d)
                row = self._sketch.finish(acc)
                norms = torch.stack(torch._foreach_norm(deltas, 2, dtype=torch.float64)).pow(2).cpu().numpy()
                self._last_sketch_step = step
                self._queue.put(("sketch", (step, epoch, loss, row.cpu().numpy(), float(norms.sum()), norms)))
            if full:
                # the delta pass: read θ_t and θ0 (float32), write the rounded delta into the image
                element = torch.empty((), dtype=self.dtype).element_size()
                work.count_bytes(
                    "snapshot delta",
                    sum(p.numel() for p in current) * (2 * current[0].element_size() + element),
                )
                image = self._take_buffers()
                buffers = list(image.lay_out({"step": str(step), "epoch": str(epoch)}).values())
                if self._delta_pass is not None and deltas is None:  # computed while the next step runs
                    job = Job(self._delta_pass, [b.view(-1) for b in buffers])
                    self._pending = (job, step, epoch, loss, image)
                    self._last_step = step
                    self._jobs.put(job)
                    return
                if deltas is not None:  # the float32 deltas are there already: one cast into the file
                    for buffer, d in zip(buffers, deltas):
                        buffer.copy_(d)
                elif current[0].device.type == "cpu":
                    round_delta_into(buffers, current, self._theta0, self._scratch)
                else:  # on an accelerator: the delta there, then one copy (and cast) off it
                    for buffer, d in zip(buffers, torch._foreach_sub(current, self._theta0)):
                        buffer.copy_(d)
                self._last_step = step
                self._queue.put(("snapshot", (step, epoch, loss, image)))

    def _take_buffers(self) -> SafetensorsImage:
        """The host buffer of one snapshot file: one the writer has finished with, else a new one
        (at most queue_size + 2 ever exist: queued, being written, being filled)."""
        try:
            return self._free.get_nowait()
        except queue.Empty:
            return SafetensorsImage(
                {n: tuple(p.shape) for n, p in zip(self._names, self._params)}, self.dtype
            )

    def _finish_pending(self, write: bool = True) -> None:
        """Complete the pending delta pass (the training thread takes the tasks the helper has not
        started) and hand its image to the writer."""
        if self._pending is None:
            return
        job, step, epoch, loss, image = self._pending
        self._pending = None
        job.finish(self._delta_scratch)
        if write:
            self._queue.put(("snapshot", (step, epoch, loss, image)))

    def _delta_loop(self, scratch: list[list[torch.Tensor]]) -> None:
        # only ops under ATen's grain size run here (see PIECE): no OpenMP team of its own
        while (job := self._jobs.get()) is not None:
            job.work(scratch)

    # -- the writer thread ------------------------------------------------------------------
    def _write_loop(self) -> None:
        try:  # yield the CPU to training: the writer only needs the gaps (Linux: per-thread nice)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except (AttributeError, OSError):
            pass
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    kind, args = item
                    if kind == "sketch":
                        self._sketch_writer.append(*args)
                    else:
                        write_snapshot(self.dirpath, *args)
                        self._free.put(args[3])  # written: its buffer can take the next snapshot
            except BaseException as err:  # surfaced on the training thread
                self._error = err
            finally:
                self._queue.task_done()

    def _raise_writer_error(self) -> None:
        if self._error is None:
            return
        if isinstance(self._error, (BadInput, OSError)):  # a full disk, a read-only place: bad input
            raise OutputError(
                f"writing a weight snapshot to {self.dirpath} failed: {self._error}"
            ) from self._error
        raise RuntimeError(
            f"writing a weight snapshot to {self.dirpath} failed: {self._error}"
        ) from self._error

    def _close(self, raise_errors: bool = True) -> None:
        if self._pending is not None:  # after an exception: the helper lets go of θ and the image
            try:
                self._finish_pending(write=raise_errors)
            except Exception:
                if raise_errors:
                    raise
        if self._delta_thread is not None:
            self._jobs.put(None)
            self._delta_thread.join()
            self._delta_thread = None
        self._delta_pass, self._delta_scratch = None, []
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self._theta0 = []
        self._free = queue.SimpleQueue()
        self._scratch = {}
        self._sketch = None  # its hash indices take 8 bytes per parameter on the device
        if raise_errors:
            self._raise_writer_error()
