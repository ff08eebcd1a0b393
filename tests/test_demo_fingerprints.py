"""The demo's stage records (issue 19): an edit to a YAML file a stage's request is composed from
re-runs it; a copied demo directory is the same demo (paths count relative to it, files by content)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import changes, tree_state

import bertviz_landscape.contracts.config as config_module
from bertviz_landscape.cli.compose import compose
from bertviz_landscape.cli.demo import stages as demo_stages
from bertviz_landscape.pipeline.runner import Pipeline, Stage


def run_pipeline(root: Path, stages: list[Stage]) -> list[str]:
    with open(os.devnull, "w") as devnull:
        return [entry["status"] for entry in Pipeline(root, out=devnull).run(stages)]


EDITS = {  # issue 19's two cases: (the demo's stage, YAML file, old text, new text)
    "consistency quantiles": (
        "consistency sst2_pretrained_seed0",
        "analysis/consistency.yaml",
        "quantiles: [10, 25, 50]",
        "quantiles: [10, 20, 50]",
    ),
    "demo max_length": (
        "train sst2_scratch_seed0",
        "experiment/demo.yaml",
        "max_length: 64 ",
        "max_length: 48 ",
    ),
}


def demo_stage(root: Path, name: str, out: Path, action, *overrides: str) -> Stage:
    """The demo's stage `name` (its request and inputs, composed from the YAML as they are now)
    with `action` making `out` instead of the real work."""
    cfg = compose("demo", [f"output_dir={root}", "seeds=[0]", "analyses=[consistency]", *overrides])
    real = next(s for s in demo_stages(cfg) if s.name == name)
    return Stage(real.name, real.request, [out], action, inputs=real.inputs)


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_an_edit_to_a_composed_yaml_reruns_the_stage(tmp_path, monkeypatch, edit):
    """Was: "all 21 stages finished in 0.0 s" after an edit to a YAML file a stage composes (the
    record held the command-line overrides only): a stale report."""
    stage, name, old, new = EDITS[edit]
    conf = shutil.copytree(config_module.CONF_DIR, tmp_path / "conf")
    monkeypatch.setattr(config_module, "CONF_DIR", str(conf))
    root, out = tmp_path / "demo", tmp_path / "demo" / "a.json"
    calls = []

    def stages():
        def action():
            calls.append(1)
            out.write_text("{}")

        return [demo_stage(root, stage, out, action)]

    assert run_pipeline(root, stages()) == ["done"]
    assert run_pipeline(root, stages()) == ["skipped"]  # nothing changed
    yaml = conf / name
    text = yaml.read_text()
    assert text.count(old) == 1, (name, old)
    before = tree_state(tmp_path)
    yaml.write_text(text.replace(old, new))  # the same overrides, another YAML value
    assert run_pipeline(root, stages()) == ["done"] and len(calls) == 2
    changed = changes(before, tmp_path) - {yaml}
    assert changed and all(p.is_relative_to(root) for p in changed), changed  # only the demo's own files
    assert run_pipeline(root, stages()) == ["skipped"]  # and the new record is kept


def test_a_copied_demo_directory_skips_what_it_finished(tmp_path):
    def stages(root: Path):
        surface = root / "surfaces" / "s.h5"

        def make():
            surface.parent.mkdir(parents=True, exist_ok=True)
            surface.write_bytes(b"surface")

        def analyse():
            (root / "a.json").write_text("{}")

        return [
            Stage("line", {"output": str(surface)}, [surface], make),
            Stage("flatness", {"surface": str(surface)}, [root / "a.json"], analyse, inputs=[surface]),
        ]

    first = tmp_path / "first"
    assert run_pipeline(first, stages(first)) == ["done", "done"]
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)  # new paths, new mtimes, the same content
    os.utime(copy / "surfaces" / "s.h5", (1, 1))
    before = tree_state(first)
    assert run_pipeline(copy, stages(copy)) == ["skipped", "skipped"]
    assert not changes(before, first)  # the copy neither reads its records from nor writes into the first
    (copy / "surfaces" / "s.h5").write_bytes(b"another")  # a changed input re-runs its readers
    assert run_pipeline(copy, stages(copy))[1] == "done"


def test_data_edited_in_place_rerun_the_train_stage(tmp_path):
    """Was: a finished demo re-run on edited data skipped every stage (the train stage's record held
    the overrides and the composed YAML, not the examples): the old runs, a stale report."""
    from conftest import write_glue
    from test_fingerprints import flip_labels

    glue = write_glue(tmp_path / "glue")
    root, out = tmp_path / "demo", tmp_path / "demo" / "runs" / "x" / "metrics.json"
    calls = []

    def stages(data_dir: Path) -> list[Stage]:
        def action():  # the stage's own record, without training
            calls.append(1)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("{}")

        over = [f"glue_dir={data_dir}", "tasks=[mrpc,rte]"]
        return [demo_stage(root, "train mrpc_scratch_seed0", out, action, *over)]

    assert run_pipeline(root, stages(glue)) == ["done"]
    assert run_pipeline(root, stages(glue)) == ["skipped"]
    flip_labels(glue / "MRPC" / "train.tsv")  # same names, same sizes, other labels
    assert run_pipeline(root, stages(glue)) == ["done"] and len(calls) == 2
    before = tree_state(glue)
    assert run_pipeline(root, stages(glue)) == ["skipped"]
    assert not changes(before, glue)  # the data are read, never written
