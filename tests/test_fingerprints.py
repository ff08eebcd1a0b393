"""Stale or mixed results (issue 19): a run's and a surface's fingerprint cover the data by
content, so edited data are never silently reused; a copied data directory is the same data;
overwrite=true discards exactly the points it replaces; impossible data settings are one line."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import assert_changes_only_under, exits_2_with_one_line, tiny_train_cfg, tree_state
from helpers.data import flip_labels
from helpers.landscape import data_cfg, tiny_run  # noqa: F401  (fixture)

from bertviz_landscape.contracts.errors import LandscapeError
from bertviz_landscape.contracts.fingerprints import FULL_HASH_BYTES, file_fingerprint
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.engine.surface import load_surface
from bertviz_landscape.engine.sweep import landscape
from bertviz_landscape.training.train import RunConfigError, train


def test_file_fingerprint_is_by_content_and_samples_large_files(tmp_path, monkeypatch):
    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    a.write_text("x\t1\n")
    b.write_text("x\t1\n")
    assert file_fingerprint(a) == file_fingerprint(b)  # another path, same content
    b.write_text("x\t0\n")
    assert file_fingerprint(a) != file_fingerprint(b)  # same size, other content
    import bertviz_landscape.contracts.fingerprints as fp

    monkeypatch.setattr(fp, "FULL_HASH_BYTES", 1000)
    big = tmp_path / "big"
    big.write_bytes(bytes(range(256)) * 100)
    first = fp.file_fingerprint(big)
    assert set(first) == {"bytes", "sampled_sha256"} and FULL_HASH_BYTES > 1000
    data = bytearray(big.read_bytes())
    data[-1] ^= 1  # the last block is always sampled
    big.write_bytes(bytes(data))
    assert fp.file_fingerprint(big) != first


def test_finished_run_on_edited_data_is_refused_and_copied_data_are_the_same(glue_dir, tmp_path):
    run = RunDir(tmp_path / "run")
    first = train(tiny_train_cfg(glue_dir, "callbacks=none"), run.root)
    copy = shutil.copytree(glue_dir, tmp_path / "moved_glue")  # same files elsewhere: the same run
    assert train(tiny_train_cfg(copy, "callbacks=none"), run.root) == first
    flip_labels(copy / "MRPC" / "train.tsv")
    with pytest.raises(RunConfigError, match=r"another configuration \(data.train.sha256: '[0-9a-f]+' -> "):
        train(tiny_train_cfg(copy, "callbacks=none"), run.root)
    before = tree_state(tmp_path)
    exits_2_with_one_line(
        lambda: train(tiny_train_cfg(copy, "callbacks=none"), run.root),
        f"{run.root}",
        "data.train.sha256",
        "force=true",
    )
    assert_changes_only_under(before, tmp_path, run.lock_file)  # not "already complete; skipping"
    assert run.read_metrics() == first  # the finished run is untouched
    forced = train(tiny_train_cfg(copy, "callbacks=none", "force=true"), run.root)
    assert forced["fingerprint"] != first["fingerprint"]
    assert run.read_identity()["data"]["train"] == file_fingerprint(copy / "MRPC" / "train.tsv")


def test_run_recorded_before_data_fingerprints_is_still_recognised(glue_dir, tmp_path):
    import json

    run = RunDir(tmp_path / "run")
    first = train(tiny_train_cfg(glue_dir, "callbacks=none"), run.root)
    ident = run.read_identity()
    legacy = {k: v for k, v in ident.items() if k != "data"}
    from bertviz_landscape.contracts.fingerprints import digest

    legacy["fingerprint"] = digest(ident["config"])  # how runs were fingerprinted before
    run.identity_file.write_text(json.dumps(legacy))
    assert train(tiny_train_cfg(glue_dir, "callbacks=none"), run.root) == first  # skipped, not refused


@pytest.mark.parametrize(
    "override, key",
    [
        ("data.max_length=-5", "data.max_length"),
        ("data.batch_size=0", "data.batch_size"),
        ("data.eval_batch_size=0", "data.eval_batch_size"),
        ("data.max_train_samples=-1", "data.max_train_samples"),
    ],
)
def test_impossible_data_settings_are_one_error_naming_the_key(glue_dir, tmp_path, override, key):
    run = RunDir(tmp_path / "run")
    with pytest.raises(RunConfigError, match=rf"{key} must be"):
        train(tiny_train_cfg(glue_dir, override, "callbacks=none"), run.root)
    assert not run.root.exists() or not any(run.root.iterdir())
    before = tree_state(tmp_path)
    exits_2_with_one_line(lambda: train(tiny_train_cfg(glue_dir, override, "callbacks=none"), run.root), key)
    assert_changes_only_under(before, tmp_path)


def test_surface_points_are_not_reused_after_the_data_changed_in_place(tiny_run, tmp_path):
    glue = shutil.copytree(tiny_run["glue_dir"], tmp_path / "glue")
    out = tmp_path / "s.h5"

    def curve(**kw):
        return landscape(
            task="mrpc",
            theta0=tiny_run["theta0"],
            theta1=tiny_run["theta1"],
            output=out,
            grid={"x": {"min": 0.0, "max": 1.0, "num": 3}},
            directions={"name": "difference"},
            data=data_cfg(tiny_run, glue_dir=str(glue), cache_dir=str(tmp_path / "cache")),
            splits=["dev"],
            progress=False,
            **kw,
        )

    before = load_surface(curve().surface)["dev_error"]
    old_parts = {p.name for p in out.with_name(out.name + ".parts").iterdir()}
    flip_labels(glue / "MRPC" / "dev.tsv")
    with pytest.raises(LandscapeError, match="another configuration.*it is kept.*overwrite=true"):
        curve()
    state = tree_state(tmp_path)
    exits_2_with_one_line(curve, str(out), "another configuration", "overwrite=true")
    assert_changes_only_under(state, tmp_path, tmp_path / "cache")  # the surface, its parts: as they were
    np.testing.assert_array_equal(load_surface(out)["dev_error"], before)  # the old surface is intact
    result = curve(overwrite=True)
    assert result.evaluated == 3  # nothing reused
    np.testing.assert_allclose(load_surface(out)["dev_error"], 1.0 - before)  # flipped labels: 1 − error
    parts = (
        {p.name for p in out.with_name(out.name + ".parts").iterdir()}
        if out.with_name(out.name + ".parts").exists()
        else set()
    )
    assert not (old_parts & parts)  # the replaced landscape's points are gone
