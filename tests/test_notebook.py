"""examples/quickstart.ipynb: executed end to end (slow, ~2–3 min on 2 cores: CI's `make notebook`),
and stored without outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import REAL_GLUE, require_extra

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "quickstart.ipynb"


def test_the_notebook_is_stored_without_outputs():
    import json

    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(not c["outputs"] and c["execution_count"] is None for c in code)


@pytest.mark.slow
def test_the_quickstart_notebook_runs_end_to_end(tmp_path, monkeypatch):
    """Every cell through the Python API on the tiny model and real GLUE subsets; a cell error
    (nbclient's CellExecutionError) fails the test."""
    nbformat = require_extra("nbformat", "notebook")
    nbclient = require_extra("nbclient", "notebook")
    require_extra("ipykernel", "notebook")
    if not (REAL_GLUE / "SST-2" / "train.tsv").is_file():
        pytest.fail(f"GLUE is not at {REAL_GLUE} (set GLUE_DIR)")
    monkeypatch.setenv("GLUE_DIR", str(REAL_GLUE))
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the notebook's outputs: a temporary directory
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "pretrained" in printed and "scratch" in printed and "curve1d_sst2" in printed, printed[-2000:]
    assert not (NOTEBOOK.parent / "outputs").exists()
