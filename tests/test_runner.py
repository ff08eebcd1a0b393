"""The generic stage runner (pipeline/runner.py): a stage's record digests its typed request by its
fields and carries the stage's useful work; a killed run resumes at the stage it was in."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from bertviz_landscape.pipeline.runner import Pipeline, Stage


@dataclass(frozen=True)
class Request:
    lr: float
    run: Path
    layers: tuple[str, ...] = ("layer.0",)


def statuses(root: Path, stages: list[Stage]) -> list[str]:
    return [e["status"] for e in Pipeline(root, out=io.StringIO()).run(stages)]


def test_a_typed_request_is_digested_by_its_fields(tmp_path):
    out, calls = tmp_path / "out.txt", []

    def stage(request: Request) -> Stage:
        def action():
            calls.append(request)
            out.write_text("x")

        return Stage("curve x", request, [out], action)

    assert statuses(tmp_path, [stage(Request(1e-4, tmp_path / "runs" / "a"))]) == ["done"]
    record = json.loads((tmp_path / ".stages" / "curve__x.json").read_text())
    assert record["request"] == {"lr": 1e-4, "run": str(tmp_path / "runs" / "a"), "layers": ["layer.0"]}
    assert statuses(tmp_path, [stage(Request(1e-4, tmp_path / "runs" / "a"))]) == ["skipped"]  # equal fields
    assert statuses(tmp_path, [stage(Request(3e-4, tmp_path / "runs" / "a"))]) == ["done"]
    assert statuses(tmp_path, [stage(Request(3e-4, tmp_path / "runs" / "a", ("layer.1",)))]) == ["done"]
    assert len(calls) == 3


def test_a_stage_record_carries_its_useful_work(tmp_path):
    """``work`` (useful FLOPs and bytes: a dict, or a callable asked after the action) is recorded as
    given for benchmarks/roofline.py; a stage without it records none."""
    tokens = []

    def action():
        tokens.append(128)
        (tmp_path / "b").write_text("b")

    stages = [
        Stage("line x", {}, [tmp_path / "a"], lambda: (tmp_path / "a").write_text("a"), work={"flops": 2e9}),
        Stage("plane x", {}, [tmp_path / "b"], action, work=lambda: {"flops": 6 * sum(tokens), "bytes": 4}),
        Stage("figures", {}, [tmp_path / "c"], lambda: (tmp_path / "c").write_text("c")),
    ]
    assert statuses(tmp_path, stages) == ["done"] * 3
    records = {p.stem: json.loads(p.read_text()) for p in (tmp_path / ".stages").glob("*.json")}
    assert records["line__x"]["work"] == {"flops": 2e9}
    assert records["plane__x"]["work"] == {"flops": 768, "bytes": 4}  # counted after the action
    assert "work" not in records["figures"]


def test_a_killed_run_resumes_at_the_stage_it_was_in(tmp_path):
    """A run killed inside a stage leaves no record of it: the next run skips the stages before it and
    runs it again (its action resumes what it left) and the rest."""
    made = []

    def make(name: str, kill: bool = False):
        def action():
            (tmp_path / f"{name}.partial").write_text("half")
            if kill:
                raise KeyboardInterrupt  # the kill, mid-stage
            (tmp_path / name).write_text("done")
            made.append(name)

        return Stage(name, {"name": name}, [tmp_path / name], action)

    with pytest.raises(KeyboardInterrupt):
        statuses(tmp_path, [make("a"), make("b", kill=True), make("c")])
    assert made == ["a"] and not (tmp_path / ".stages" / "b.json").exists()
    assert statuses(tmp_path, [make("a"), make("b"), make("c")]) == ["skipped", "done", "done"]
    assert made == ["a", "b", "c"]
