"""The weight trajectory on disk: θ_t − θ0 every n steps, read back lazily.

Layout of ``<run_dir>/snapshots/`` (format ``bertviz-snapshots/1``):

``meta.json``
    ``{"format", "dtype", "every_n_steps", "theta0": "../checkpoints/init",
    "parameters": [{"name", "shape"}, ...], "bytes_per_snapshot"}``. Parameter names are
    those of ``model.named_parameters()`` of the Hugging Face model (trainable ones, tied
    parameters once), which are also the keys of ``checkpoints/init``.
``step_<00000012>.safetensors``
    One file per snapshot: the delta θ_t − θ0 of every parameter, in ``dtype``
    (float16 by default: a half-precision *delta* keeps fine-tuning's ~1e-3 relative moves
    that a half-precision copy of the weights would round away). Read lazily (memory-mapped).
``index.jsonl``
    One JSON line per finished snapshot: ``{"step", "epoch", "loss", "file"}``. A line is
    appended only after its file is complete (written to a temporary name, fsynced, renamed),
    so the index survives a crash; a torn last line is ignored on reading.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from bertviz_landscape.atomic import atomic_path, write_text_atomic
from bertviz_landscape.errors import BadInput
from bertviz_landscape.names import ConfinementError, confine
from bertviz_landscape.rundir import RunDir

FORMAT = "bertviz-snapshots/1"
log = logging.getLogger(__name__)


class SnapshotError(BadInput):
    """A snapshot file or index line that is missing, truncated or corrupt (named in the message)."""


DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
SAFETENSORS_DTYPES = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32"}


def snapshot_file(step: int) -> str:
    return f"step_{step:08d}.safetensors"


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """A safetensors file written tensor by tensor from the tensors' own memory (callers wrap it
    in `atomic_path`, which fsyncs and renames).

    Readable by `safetensors.safe_open` / `load_file` like any other; unlike
    `safetensors.torch.save_file` it does not first assemble the whole payload in one buffer,
    which halves the writer thread's time (it shares the CPU with training).
    """
    header: dict[str, dict] = {"__metadata__": metadata}
    offset = 0
    for name, tensor in tensors.items():
        size = tensor.numel() * tensor.element_size()
        header[name] = {
            "dtype": SAFETENSORS_DTYPES[tensor.dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for tensor in tensors.values():
            handle.write(memoryview(tensor.contiguous().view(torch.uint8).numpy()))


def write_snapshot(
    directory: Path, step: int, epoch: int, loss: float | None, delta: dict[str, torch.Tensor]
) -> None:
    """Write one snapshot atomically, then record it in the index."""
    name = snapshot_file(step)
    with atomic_path(directory / name) as tmp:
        write_safetensors(tmp, delta, {"step": str(step), "epoch": str(epoch)})
    with open(directory / "index.jsonl", "a") as index:
        index.write(json.dumps({"step": step, "epoch": epoch, "loss": loss, "file": name}) + "\n")
        index.flush()
        os.fsync(index.fileno())


def truncate_snapshots(directory: Path, last_step: int) -> None:
    """Forget snapshots after `last_step` (a run resumed from there writes them again)."""
    index = directory / "index.jsonl"
    if not index.exists():
        return
    kept, dropped = [], []
    for line in index.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if row["step"] <= last_step:
            kept.append(line)
        else:
            dropped.append(row["file"])
    write_text_atomic(
        index, "".join(f"{line}\n" for line in kept)
    )  # the index first: it never lists a deleted file
    for name in dropped:
        (directory / name).unlink(missing_ok=True)


@dataclass(frozen=True)
class SnapshotRecord:
    step: int
    epoch: int
    loss: float | None
    file: str


class Snapshots:
    """Read a run's snapshots: ``Snapshots(run_dir)`` (or the ``snapshots/`` directory itself).

    >>> snaps = Snapshots("outputs/runs/mrpc_pretrained/...")
    >>> snaps.steps[:3], len(snaps)
    >>> delta = snaps.delta(10)          # {name: θ_10 − θ0} in the stored dtype
    >>> theta = snaps.weights(10)        # {name: θ0 + δ} in float32
    """

    def __init__(self, path: str | os.PathLike) -> None:
        path = Path(path)
        self.directory = RunDir(path).snapshots if RunDir(path).snapshots.is_dir() else path
        meta_path = self.directory / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(f"no snapshots here: {meta_path} does not exist")
        try:
            self.meta = json.loads(meta_path.read_text())
        except (ValueError, RecursionError) as err:  # garbage, truncated, not UTF-8, absurdly nested
            text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise SnapshotError(f"{meta_path}: not valid JSON ({text[:120]})") from None
        if not isinstance(self.meta, dict) or self.meta.get("format") != FORMAT:
            found = self.meta.get("format") if isinstance(self.meta, dict) else type(self.meta).__name__
            raise SnapshotError(
                f"{meta_path}: unknown snapshot format {str(found)[:80]!r} (expected {FORMAT})"
            )
        self.records: list[SnapshotRecord] = []
        seen = set()
        index = self.directory / "index.jsonl"
        lines = index.read_text().splitlines() if index.exists() else []
        for number, line in enumerate(lines, start=1):
            try:
                row = json.loads(line)
                step, epoch, file = int(row["step"]), int(row["epoch"]), str(row["file"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                if number == len(lines):  # a torn last line after a crash: the format allows it
                    log.warning(
                        "%s: ignoring the torn last line %d (a crash while it was written)", index, number
                    )
                    continue
                raise SnapshotError(
                    f"{index}: line {number} is not a snapshot record: {line[:80]!r}"
                ) from None
            if step in seen:
                continue
            if file != snapshot_file(step):  # a row may name only its own step's file, in this directory
                raise SnapshotError(
                    f"{index}: line {number} (step {step}) names file {file[:80]!r}, not "
                    f"{snapshot_file(step)!r}; an index lists only its own directory's step files"
                )
            if not (self.directory / file).is_file():
                raise SnapshotError(
                    f"{self.directory / file}: listed in {index} (line {number}, step {step}) but missing"
                )
            try:  # its own name, but a symlink to another run's (or any) file is not this run's step
                confine(self.directory / file, self.directory, f"{index}: line {number} (step {step}) file")
            except ConfinementError as err:
                raise SnapshotError(str(err)) from None
            seen.add(step)
            self.records.append(SnapshotRecord(step, epoch, row.get("loss"), file))
        self.records.sort(key=lambda r: r.step)
        self._by_step = {r.step: r for r in self.records}

    @property
    def steps(self) -> list[int]:
        return [r.step for r in self.records]

    @property
    def parameter_names(self) -> list[str]:
        return [p["name"] for p in self.meta["parameters"]]

    @property
    def theta0_path(self) -> Path:
        """θ0 as meta.json names it, relative to the snapshots; confined to the run directory."""
        return confine(
            self.directory.resolve() / str(self.meta["theta0"]),
            self.directory.resolve().parent,
            f"{self.directory / 'meta.json'}: theta0",
        )

    def __len__(self) -> int:
        return len(self.records)

    def record(self, step: int) -> SnapshotRecord:
        if step not in self._by_step:
            raise KeyError(f"no snapshot for step {step} in {self.directory}")
        return self._by_step[step]

    def delta(self, step: int, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        """θ_step − θ0 in the stored dtype (memory-mapped; `names` selects parameters)."""
        path = self.directory / self.record(step).file
        try:
            with safe_open(str(path), framework="pt") as f:
                return {k: f.get_tensor(k) for k in (names or f.keys())}
        except Exception as err:  # truncated or corrupt file (safetensors raises its own error types)
            if isinstance(err, KeyError):
                raise SnapshotError(f"{path}: has no parameter {err.args[0]!r}") from None
            raise SnapshotError(
                f"{path}: unreadable snapshot ({type(err).__name__}: "
                f"{str(err).splitlines()[0] if str(err) else ''})"
            ) from None

    def iter_deltas(
        self, names: list[str] | None = None
    ) -> Iterator[tuple[SnapshotRecord, dict[str, torch.Tensor]]]:
        for r in self.records:
            yield r, self.delta(r.step, names)

    def theta0(self) -> dict[str, torch.Tensor]:
        """θ0 of the trajectory's parameters (float32), read from checkpoints/init."""
        from safetensors.torch import load_file

        files = sorted(self.theta0_path.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"θ0 checkpoint {self.theta0_path} has no safetensors weights")
        state: dict[str, torch.Tensor] = {}
        for f in files:
            state.update(load_file(str(f)))
        names = self.parameter_names
        missing = [n for n in names if n not in state]
        if missing:
            raise KeyError(f"θ0 checkpoint {self.theta0_path} lacks parameters {missing[:5]}")
        return {n: state[n].float() for n in names}

    def weights(self, step: int, theta0: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """θ_step = θ0 + δ_step in float32."""
        base = theta0 if theta0 is not None else self.theta0()
        return {k: base[k].float() + v.float() for k, v in self.delta(step).items()}
