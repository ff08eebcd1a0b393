"""The publisher (publish/publisher.py): figures first, then the report and the W&B media, which
read the figures catalogue and draw nothing themselves."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from helpers.plots import write_fixture_dir

from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.resultsdir import ResultsDir


def _refuse_drawing(monkeypatch) -> None:
    """Every drawer a surface could be redrawn with raises (a publisher that redraws fails)."""
    from bertviz_landscape.plots import curves, surface2d, surface3d

    def refused(*args, **kwargs):
        raise AssertionError("drawn outside the publisher's figures stage")

    for module, name in (
        (surface2d, "surface_contours"),
        (surface3d, "interactive_html"),
        (curves, "loss_curves"),
    ):
        monkeypatch.setattr(module, name, refused)


def test_the_report_draws_nothing_the_publisher_draws_the_missing_figures_first(tmp_path):
    from bertviz_landscape.publish import publisher
    from bertviz_landscape.publish.report.writer import build_report

    root = write_fixture_dir(tmp_path / "res")
    where = ResultsDir(root)
    with pytest.raises(BadInput, match="figures.json: no figures catalogue"):
        build_report(root)
    assert not where.figures.exists()  # the report module drew nothing, not even a claim's figure
    md, page = publisher.write_report(root)
    assert where.catalogue.is_file() and (md, page) == (where.report_md, where.report_html)
    catalogue = json.loads(where.catalogue.read_text())
    pngs = [f for fig in catalogue["figures"] for f in fig["files"] if f.endswith(".png")]
    assert pngs and all(Path(p).is_file() for p in pngs)
    claims = sorted(where.figures.glob("claims/claim_*.png"))
    assert claims and all(f"figures/claims/{p.name}" in md.read_text() for p in claims)


def test_wandb_media_upload_the_catalogued_figure_files_and_draw_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    from bertviz_landscape.plots.results import draw_all
    from bertviz_landscape.publish.wandb_media import log_results

    root = write_fixture_dir(tmp_path / "res")
    draw_all(root, formats=("png",), interactive=False)
    where = ResultsDir(root)
    catalogue = json.loads(where.catalogue.read_text())
    # the scratch plane's own figure is left out of the catalogue: W&B logs no image for it
    scratch_plane = str(root / "surfaces" / "mrpc_scratch_plane.h5")
    catalogue["figures"] = [
        f for f in catalogue["figures"] if not (f["kind"] == "surface2d" and scratch_plane in f["sources"])
    ]
    where.catalogue.write_text(json.dumps(catalogue))
    _refuse_drawing(monkeypatch)
    out = log_results(root)
    runs = {(r["job_type"], r["init"]): r for r in out["runs"]}
    pre, scr = runs[("landscape", "pretrained")], runs[("landscape", "scratch")]
    assert "landscape/mrpc_difference_plane/figure" in pre["keys"]
    assert "landscape/mrpc_difference_plane/figure" not in scr["keys"]  # not redrawn
    assert not any(k.endswith("/interactive_3d") for r in out["runs"] for k in r["keys"])  # none catalogued
    # what was uploaded is the catalogue's files, byte for byte
    catalogued = {
        hashlib.sha256(Path(p).read_bytes()).hexdigest()
        for fig in catalogue["figures"]
        for p in fig["files"]
        if p.endswith(".png")
    }
    for entry in out["runs"]:
        assert set(entry["figures"]) <= {p for fig in catalogue["figures"] for p in fig["files"]}
        images = sorted(Path(entry["dir"]).glob("files/media/images/**/*.png"))
        assert images, entry["job_type"]
        assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in images} <= catalogued
