"""A generic stage runner: run each stage of a list unless it is done; a killed run resumes.

A `Stage` is a name, the **request** that decides its outputs (a typed request — a dataclass —
or plain JSON values, or a dict of them), the output files it makes, the input files it reads
(outputs of earlier stages, data), and the action that makes the outputs. The runner knows
nothing else about a stage::

    Pipeline(root, out, log_file, label="demo").run([Stage("train x", request, [out], action), ...])

For each stage, in order, under an exclusive lock ``<root>/.stages/.<stage>.lock`` (a second
process on the same directory waits, then finds the stage done):

- **done** when every output exists and the record ``<root>/.stages/<stage>.json`` holds the
  stage's current digest: the SHA-256 of the canonical JSON (sorted keys; a dataclass as its
  fields, a path as its text) of the request and of the content fingerprints of its inputs,
  taken when the stage is reached (so a file an earlier stage just rewrote counts as it is now).
  Paths inside `root` count relative to it (a copied or moved directory is the same one); files
  count by content (`contracts.fingerprints.file_fingerprint`; a missing input counts as missing).
  A done stage prints ``skipped (done)``. A changed digest only re-runs stages.
- otherwise its action runs with file descriptors 1 and 2 appended to `log_file` (the console
  gets one progress line per stage); on success the record is written atomically: the stage's
  name, digest, request, input fingerprints, outputs, wall and CPU seconds, finish time and, when
  the stage carries one, its ``work`` (useful FLOPs / bytes: a dict, or a callable asked after
  the action). A failing stage prints ``FAILED`` with the error's first line and leaves no
  record; the error propagates.

A run killed mid-stage leaves that stage without a record: the next run runs it again (its
action resumes what it left, if it can) and skips the finished ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bertviz_landscape.contracts.atomic import open_in_place, write_json_atomic
from bertviz_landscape.contracts.fingerprints import file_fingerprint
from bertviz_landscape.contracts.locks import held

RECORDS = ".stages"  # <root>/.stages/<stage>.json: each finished stage's record
ROOT_TOKEN = "<output_dir>"  # what a path inside the runner's root is digested as


@dataclass
class Stage:
    name: str
    request: Any  # everything that decides the outputs: typed requests and/or plain JSON values
    outputs: list[Path]
    action: Callable[[], object]
    inputs: list[Path] = field(default_factory=list)  # files it reads: their content counts
    work: Mapping | Callable[[], Mapping] | None = None  # useful work (FLOPs, bytes), recorded as is


def canonical(value: Any) -> Any:
    """`value` as plain JSON values: a dataclass as a dict of its fields, a path as its text, a
    tuple or list as a list, a set sorted, an enum as its value, a mapping with text keys."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((canonical(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True, default=str))
    if isinstance(value, enum.Enum):
        return canonical(value.value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar
        return value.item()
    return str(value)


def canonical_json(value: Any, root: Path | None = None) -> str:
    """The canonical JSON text of `value` (sorted keys, no spaces); with `root`, its path (given
    or resolved) written as ``<output_dir>``."""
    text = json.dumps(canonical(value), sort_keys=True, separators=(",", ":"), default=str)
    if root is not None:
        for prefix in sorted({str(Path(root).resolve()), str(Path(root))}, key=len, reverse=True):
            text = text.replace(prefix, ROOT_TOKEN)
    return text


def digest(request: Any, inputs: Mapping | None = None, root: Path | None = None) -> str:
    """16 hex digits of the SHA-256 of the request's and the inputs' canonical JSON."""
    text = canonical_json({"request": request, "inputs": inputs or {}}, root)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_FINGERPRINTS: dict[tuple, dict] = {}  # this process's file_fingerprint by (path, inode, size, mtime)


def fingerprint(path: Path) -> dict | None:
    """`file_fingerprint(path)` (None for a missing file), hashed once per version of the file in
    this process: late stages read the same files."""
    try:
        st = Path(path).stat()
    except FileNotFoundError:
        return None
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _FINGERPRINTS:
        _FINGERPRINTS[key] = file_fingerprint(path)
    return _FINGERPRINTS[key]


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (user + system): on a busy shared
    machine it tells what a stage costs when wall time cannot."""
    import resource  # optional dependency: POSIX only

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class Pipeline:
    """Runs stages in order; skips those whose outputs exist and whose record matches."""

    def __init__(self, root: Path, out=None, log_file: Path | None = None, label: str = "pipeline"):
        self.root = Path(root)
        self.records = self.root / RECORDS
        self.label = label  # the progress lines' tag: [<label>  3/57] ...
        self.log_file = log_file  # the stages' own output (progress bars, library logs), not the console
        if out is None:
            sys.stdout.flush()
            out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1) if log_file else sys.stdout
        self.out = out
        self.log: list[dict] = []

    # --- what decides whether a stage is done ------------------------------------------------
    def record_path(self, stage: Stage) -> Path:
        return self.records / f"{stage.name.replace(' ', '__').replace('/', '_')}.json"

    def inputs(self, stage: Stage) -> dict[str, dict | None]:
        """Each input's content fingerprint now (None: missing), by its path."""
        return {str(p): fingerprint(Path(p)) for p in stage.inputs}

    def digest(self, stage: Stage, inputs: Mapping | None = None) -> str:
        return digest(stage.request, self.inputs(stage) if inputs is None else inputs, self.root)

    def is_done(self, stage: Stage) -> bool:
        rec = self.record_path(stage)
        if not rec.is_file() or not all(Path(p).exists() for p in stage.outputs):
            return False
        try:
            return json.loads(rec.read_text()).get("digest") == self.digest(stage)
        except ValueError:
            return False

    # --- running ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _captured(self):
        """fds 1 and 2 into the log file while a stage runs (one clean progress line per stage)."""
        if self.log_file is None:
            yield
            return
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        sys.stdout.flush(), sys.stderr.flush()
        with open_in_place(self.log_file, "a") as logf:  # a link planted as the log: refused
            saved = [os.dup(1), os.dup(2)]
            os.dup2(logf.fileno(), 1), os.dup2(logf.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush(), sys.stderr.flush()
                os.dup2(saved[0], 1), os.dup2(saved[1], 2)
                os.close(saved[0]), os.close(saved[1])

    def run(self, stages: list[Stage]) -> list[dict]:
        total = len(stages)
        started = time.perf_counter()
        for n, stage in enumerate(stages, 1):
            head = f"[{self.label} {n:2d}/{total}] {stage.name:<34}"
            # one process per stage: a second run on this directory waits, then skips what it finished
            with held(
                self.records / f".{self.record_path(stage).stem}.lock", f"{self.label} stage {stage.name!r}"
            ):
                if self.is_done(stage):
                    self.say(f"{head} skipped (done)")
                    self.log.append({"stage": stage.name, "status": "skipped", "seconds": 0.0})
                    continue
                self._run_one(stage, head)
        self.say(
            f"[{self.label}] all {total} stages finished in {time.perf_counter() - started:.1f} s; "
            f"results in {self.root}"
        )
        return self.log

    def _run_one(self, stage: Stage, head: str) -> None:
        tty = getattr(self.out, "isatty", lambda: False)()
        if tty:
            self.say(f"{head} ...", end="")
        t0, c0 = time.perf_counter(), _cpu_seconds()
        try:
            with self._captured():
                stage.action()
                work = stage.work() if callable(stage.work) else stage.work
        except BaseException as err:
            where = f" (see {self.log_file})" if self.log_file else ""
            self.say(
                f"{chr(13) if tty else ''}{head} FAILED after {time.perf_counter() - t0:.1f} s: "
                f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}{where}"
            )
            raise
        seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
        inputs = self.inputs(stage)  # as the action left them (it may have made or rewritten them)
        record = {
            "stage": stage.name,
            "digest": self.digest(stage, inputs),
            "request": canonical(stage.request),
            "inputs": inputs,
            "outputs": [str(p) for p in stage.outputs],
            "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu, 2),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if work is not None:
            record["work"] = canonical(work)
        write_json_atomic(self.record_path(stage), record)
        self.say(f"{chr(13) if tty else ''}{head} done in {seconds:7.1f} s (cpu {cpu:7.1f} s)")
        self.log.append(
            {
                "stage": stage.name,
                "status": "done",
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu, 2),
            }
        )

    def say(self, text: str, end: str = "\n") -> None:
        """A line on the console (not into the log file)."""
        print(text, end=end, file=self.out, flush=True)
