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

import errno
import json
import logging
import math
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from bertviz_landscape.contracts.atomic import atomic_path, open_in_place, write_text_atomic
from bertviz_landscape.contracts.checkpoints import FLOAT_DTYPES, check_tensor, read_tensors, weight_specs
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.names import ConfinementError, confine
from bertviz_landscape.contracts.rundir import RunDir

FORMAT = "bertviz-snapshots/1"
log = logging.getLogger(__name__)


class SnapshotError(BadInput):
    """A snapshot file or index line that is missing, truncated or corrupt (named in the message)."""


DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}
SAFETENSORS_DTYPES = {torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32"}


def snapshot_file(step: int) -> str:
    return f"step_{step:08d}.safetensors"


def safetensors_header(
    tensors: dict[str, tuple[torch.dtype, tuple[int, ...]]], metadata: dict[str, str]
) -> bytes:
    """A safetensors file's first bytes: the header's length (8 bytes, little-endian), then the JSON
    header padded with spaces to a multiple of 8; the tensors' bytes follow, in this order."""
    header: dict[str, dict] = {"__metadata__": metadata}
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        header[name] = {
            "dtype": SAFETENSORS_DTYPES[dtype],
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """A safetensors file written tensor by tensor from the tensors' own memory (callers wrap it
    in `atomic_path`, which fsyncs and renames).

    Readable by `safetensors.safe_open` / `load_file` like any other; unlike
    `safetensors.torch.save_file` it does not first assemble the whole payload in one buffer.
    The weight-snapshot callback writes the same bytes from a `SafetensorsImage` instead.
    """
    with open(path, "wb") as handle:
        handle.write(safetensors_header({n: (t.dtype, tuple(t.shape)) for n, t in tensors.items()}, metadata))
        for tensor in tensors.values():
            handle.write(memoryview(tensor.contiguous().reshape(-1).view(torch.uint8).numpy()))


PAGE = 4096  # the alignment of an unbuffered (O_DIRECT) write: address, length, file offset


class SafetensorsImage:
    """One safetensors file laid out in one page-aligned host buffer, header first and the
    tensors at their file offsets, so that whoever fills the tensors writes the file's bytes
    themselves and `write_image` hands the buffer to the disk unbuffered (no copy into the page
    cache: on the 2-core VM that copy cost ~130 ms of CPU per 45 MB file, O_DIRECT ~1 ms).

    >>> image = SafetensorsImage({"w": (3, 4)}, torch.float16)
    >>> views = image.lay_out({"step": "7"})   # {"w": a (3, 4) float16 view into the buffer}
    """

    def __init__(self, shapes: dict[str, tuple[int, ...]], dtype: torch.dtype) -> None:
        self.shapes = {name: tuple(int(d) for d in shape) for name, shape in shapes.items()}
        self.dtype = dtype
        self.element = torch.empty((), dtype=dtype).element_size()
        self.data_bytes = sum(math.prod(s) for s in self.shapes.values()) * self.element
        self.size = 0  # the file's length for the current header
        self._raw: torch.Tensor | None = None
        self._buffer = torch.empty(0, dtype=torch.uint8)

    def lay_out(self, metadata: dict[str, str]) -> dict[str, torch.Tensor]:
        """Write the header for `metadata` at the buffer's start; the tensors' views behind it
        (their contents are whatever the buffer held: the caller fills every element)."""
        header = safetensors_header({n: (self.dtype, s) for n, s in self.shapes.items()}, metadata)
        self.size = len(header) + self.data_bytes
        padded = -(-self.size // PAGE) * PAGE
        if self._buffer.numel() < padded:  # room for a longer header later without reallocating
            self._raw = torch.empty(padded + 2 * PAGE, dtype=torch.uint8)
            start = -self._raw.data_ptr() % PAGE
            self._buffer = self._raw[start : start + padded + PAGE]
        self._buffer[: len(header)] = torch.frombuffer(bytearray(header), dtype=torch.uint8)
        views, offset = {}, len(header)
        for name, shape in self.shapes.items():
            size = math.prod(shape) * self.element
            views[name] = self._buffer[offset : offset + size].view(self.dtype).view(shape)
            offset += size
        return views

    def file_bytes(self) -> memoryview:
        return memoryview(self._buffer[: self.size].numpy())

    def padded_bytes(self) -> memoryview:
        """The file's bytes and what follows them up to the next page boundary (cut off again)."""
        return memoryview(self._buffer[: -(-self.size // PAGE) * PAGE].numpy())


def write_image(path: Path, image: SafetensorsImage) -> None:
    """Write `image` to `path` unbuffered (O_DIRECT: the disk reads the buffer itself), falling
    back to an ordinary write where the file system refuses O_DIRECT (tmpfs, some network file
    systems) or the platform lacks it. Callers wrap it in `atomic_path`, as `write_safetensors`."""
    direct = getattr(os, "O_DIRECT", 0)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    if direct:
        try:
            fd = os.open(path, flags | direct, 0o666)
        except OSError as err:
            if err.errno != errno.EINVAL:
                raise
        else:
            try:
                _write_all(fd, image.padded_bytes())
                os.ftruncate(fd, image.size)
                return
            except OSError as err:
                if err.errno != errno.EINVAL:  # EINVAL: an alignment this device does not take
                    raise
            finally:
                os.close(fd)
    fd = os.open(path, flags, 0o666)
    try:
        _write_all(fd, image.file_bytes())
    finally:
        os.close(fd)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        written = os.write(fd, data)
        data = data[written:]


def write_snapshot(
    directory: Path,
    step: int,
    epoch: int,
    loss: float | None,
    delta: dict[str, torch.Tensor] | SafetensorsImage,
) -> None:
    """Write one snapshot atomically, then record it in the index. `delta` is a dict of tensors,
    or a `SafetensorsImage` whose header `lay_out` wrote for this step and epoch."""
    name = snapshot_file(step)
    # The file is fsynced before its rename and the index line after it (atomic_path, below):
    # without the first, a crash could leave an index line naming a file whose blocks never
    # reached the disk (ext4 allocates them late). Measured on the 2-core VM: the fsync of an
    # O_DIRECT-written file costs ~3 ms of the writer thread's wall time and ~0.2 ms CPU, off
    # the training thread, so it stays.
    with atomic_path(directory / name) as tmp:
        if isinstance(delta, SafetensorsImage):
            write_image(tmp, delta)
        else:
            write_safetensors(tmp, delta, {"step": str(step), "epoch": str(epoch)})
    with open_in_place(directory / "index.jsonl", "a") as index:
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
        self.expected = self._parameter_specs(meta_path)
        self._theta0_checked = False
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

    def _parameter_specs(self, meta_path: Path) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
        """{name: (shape, dtype)} that every snapshot file claims to hold (meta.json's parameters
        and dtype); a SnapshotError naming meta.json when they are malformed."""
        dtype = DTYPES.get(str(self.meta.get("dtype")))
        if dtype is None:
            raise SnapshotError(
                f"{meta_path}: dtype {str(self.meta.get('dtype'))[:40]!r} is not one of {sorted(DTYPES)}"
            )
        params = self.meta.get("parameters")
        specs: dict[str, tuple[tuple[int, ...], torch.dtype]] = {}
        for i, p in enumerate(params if isinstance(params, list) else [None]):
            shape = p.get("shape") if isinstance(p, dict) else None
            if not (
                isinstance(p, dict)
                and isinstance(p.get("name"), str)
                and isinstance(shape, list)
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
            ):
                raise SnapshotError(f"{meta_path}: parameters[{i}] is not a {{name, shape}} record")
            specs[p["name"]] = (tuple(shape), dtype)
        return specs

    def check_theta0(self) -> None:
        """meta.json's parameters against θ0's (checkpoints/init, from its headers): the same
        names and shapes, so a delta is always added to the tensor it was taken from; once."""
        if self._theta0_checked:
            return
        path = self.theta0_path
        if path.is_dir():
            theta0 = weight_specs(path)
            for name, (shape, _) in self.expected.items():
                if name not in theta0 or theta0[name][0] != shape:
                    raise SnapshotError(
                        f"{self.directory / 'meta.json'}: parameter {name!r} "
                        f"{'is not in' if name not in theta0 else f'has shape {list(shape)}, not that of'}"
                        f" θ0 ({path}{'' if name not in theta0 else f': {list(theta0[name][0])}'})"
                    )
        self._theta0_checked = True

    def theta0_expected(self) -> dict[str, tuple[tuple[int, ...], None]]:
        """{name: (shape, any float dtype)} of θ0's tensors, as meta.json claims them."""
        return {n: (shape, None) for n, (shape, _) in self.expected.items()}

    def check_file(self, step: int) -> Path:
        """The snapshot file of `step`, its header checked (every parameter of meta.json, in its
        shape and dtype, and nothing else) before a reader slices it; a SnapshotError naming
        the file and the tensor otherwise."""
        from safetensors import safe_open

        self.check_theta0()
        path = self.directory / self.record(step).file
        try:
            with safe_open(str(path), framework="pt") as f:
                keys = list(f.keys())
                for name in keys:
                    piece = f.get_slice(name)
                    dtype = str(piece.get_dtype())
                    shape = tuple(int(d) for d in piece.get_shape())
                    check_tensor(
                        path, name, shape, FLOAT_DTYPES.get(dtype, dtype), self.expected, SnapshotError
                    )
        except SnapshotError:
            raise
        except Exception as err:  # truncated or corrupt file (safetensors raises its own error types)
            first = str(err).splitlines()[0] if str(err) else ""
            raise SnapshotError(f"{path}: unreadable snapshot ({type(err).__name__}: {first})") from None
        missing = [n for n in self.expected if n not in keys]
        if missing:
            raise SnapshotError(f"{path}: has no parameter {missing[0]!r}")
        return path

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
        self.check_theta0()
        path = self.directory / self.record(step).file
        out = read_tensors(path, names or None, self.expected, error=SnapshotError)
        missing = [] if names else [n for n in self.expected if n not in out]
        if missing:  # every parameter meta.json lists, when all are asked for
            raise SnapshotError(f"{path}: has no parameter {missing[0]!r}")
        return out

    def iter_deltas(
        self, names: list[str] | None = None
    ) -> Iterator[tuple[SnapshotRecord, dict[str, torch.Tensor]]]:
        for r in self.records:
            yield r, self.delta(r.step, names)

    def theta0(self) -> dict[str, torch.Tensor]:
        """θ0 of the trajectory's parameters (float32), read from checkpoints/init."""
        files = sorted(self.theta0_path.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"θ0 checkpoint {self.theta0_path} has no safetensors weights")
        self.check_theta0()  # the names and shapes meta.json claims are θ0's
        state: dict[str, torch.Tensor] = {}
        names = self.parameter_names
        for f in files:  # only the trajectory's parameters (a checkpoint may hold integer buffers)
            state.update(read_tensors(f, [n for n in _keys(f) if n in set(names)], self.theta0_expected()))
        missing = [n for n in names if n not in state]
        if missing:
            raise KeyError(f"θ0 checkpoint {self.theta0_path} lacks parameters {missing[:5]}")
        return {n: state[n].float() for n in names}

    def weights(self, step: int, theta0: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """θ_step = θ0 + δ_step in float32."""
        base = theta0 if theta0 is not None else self.theta0()
        return {k: base[k].float() + v.float() for k, v in self.delta(step).items()}


def _keys(path: Path) -> list[str]:
    """The tensor names of θ0's weight file `path`; a SnapshotError naming it when unreadable."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return list(f.keys())
    except Exception as err:  # safetensors raises its own error types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SnapshotError(f"{path}: unreadable θ0 weights ({first[:160]})") from None
