"""Record θ_t − θ0 every n optimiser steps (and, optionally, its CountSketch at every step),
written in the background.

The delta is computed on the training thread (on a CPU one pass per tensor, θ_t − θ0 rounded
straight into a reused host buffer of the storage dtype; on an accelerator one fused foreach
subtraction there, then one copy off it), then handed to a writer thread through a
bounded queue, so disk I/O overlaps the next steps; when the writer falls behind, the queue
applies back-pressure instead of buffering snapshots without limit. Format: see
`bertviz_landscape.snapshots`.

With a sketch requested (``callbacks.snapshots.sketch.enabled=true``), every optimiser step
also records a k-bucket CountSketch of the float32 delta and its exact squared norm
(`bertviz_landscape.sketches`): 4·k bytes per step whatever the model, computed on the
training device with one ``scatter_add_`` per parameter (8 bytes of hash index per parameter
stay on the device), while full deltas are kept every
``every_n_steps`` steps (for PCA directions, roll-backs and anchoring the sketch estimates).
"""

from __future__ import annotations

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

from bertviz_landscape.atomic import write_json_atomic
from bertviz_landscape.errors import BadInput, OutputError
from bertviz_landscape.parameters import trainable_parameters
from bertviz_landscape.rundir import RunDir
from bertviz_landscape.sketches import CountSketch, SketchWriter
from bertviz_landscape.sketches import write_meta as write_sketch_meta
from bertviz_landscape.snapshots import DTYPES, FORMAT, Snapshots, truncate_snapshots, write_snapshot


class SnapshotBudgetError(BadInput):
    """The projected size of the snapshots exceeds the free disk space or the budget."""


class SnapshotConfigError(BadInput):
    """callbacks.snapshots settings that cannot work (a dtype that is not a float, n < 1)."""


@dataclass(frozen=True)
class SketchRequest:
    """callbacks.snapshots.sketch when enabled: k buckets and the hash seed (`bertviz_landscape.sketches`)."""

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
        )


class WeightSnapshots(pl.Callback):
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
        self.queue_size = queue_size
        self.theta0_relpath = theta0_relpath
        self._theta0: list[torch.Tensor] = []
        self._names: list[str] = []
        self._params: list[torch.Tensor] = []
        self._queue: queue.Queue | None = None
        self._free: queue.SimpleQueue = queue.SimpleQueue()  # host buffers the writer is done with
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
        self.check_disk(self.projected_total(total_steps, per_snapshot, len(params)))

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
        step = trainer.global_step
        full = step != self._last_step and step % self.every_n_steps == 0
        sketch = self._sketch is not None and step != self._last_sketch_step
        if not (full or sketch):
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self._last_epoch = trainer.current_epoch
        self._record(step, trainer.current_epoch, None if loss is None else float(loss), full, sketch)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # every snapshot of the epoch is on disk before an epoch checkpoint says the epoch is done
        self._queue.join()
        self._raise_writer_error()

    def on_train_end(self, trainer, pl_module) -> None:
        # the last snapshot is θ1 whatever every_n_steps is
        step = trainer.global_step
        full = bool(step) and step != self._last_step
        sketch = self._sketch is not None and bool(step) and step != self._last_sketch_step
        if full or sketch:
            self._record(step, self._last_epoch, None, full, sketch)
        self._close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._close(raise_errors=False)

    def _record(
        self, step: int, epoch: int, loss: float | None, full: bool = True, sketch: bool = False
    ) -> None:
        self._raise_writer_error()
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
                payload = self._take_buffers()
                if deltas is not None:  # the float32 deltas are there already: one cast into the buffers
                    for buffer, d in zip(payload.values(), deltas):
                        buffer.copy_(d)
                elif current[0].device.type == "cpu":
                    # one pass: θ_t − θ0 computed in float32 and rounded once into the storage dtype,
                    # as the float32 delta's cast would (no float32 intermediate to allocate and fill)
                    for buffer, p, p0 in zip(payload.values(), current, self._theta0):
                        torch.sub(p, p0, out=buffer)
                else:  # on an accelerator: the delta there, then one copy (and cast) off it
                    for buffer, d in zip(payload.values(), torch._foreach_sub(current, self._theta0)):
                        buffer.copy_(d)
                self._last_step = step
                self._queue.put(("snapshot", (step, epoch, loss, payload)))

    def _take_buffers(self) -> dict[str, torch.Tensor]:
        """Host buffers for one snapshot: one the writer has finished with, else new ones (at most
        queue_size + 2 sets ever exist: queued, being written, being filled)."""
        try:
            return self._free.get_nowait()
        except queue.Empty:
            return {
                n: torch.empty(p.shape, dtype=self.dtype, device="cpu")
                for n, p in zip(self._names, self._params)
            }

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
                        self._free.put(args[3])  # written: its buffers can take the next snapshot
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
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        self._theta0 = []
        self._free = queue.SimpleQueue()
        self._sketch = None  # its hash indices take 8 bytes per parameter on the device
        if raise_errors:
            self._raise_writer_error()
