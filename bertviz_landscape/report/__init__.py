"""The report of one experiment directory: ``report.md`` and a self-contained ``report.html``
(figures embedded as base64 PNGs; the interactive 3D surfaces linked beside it).

Contents: the runs (dev metric vs majority baseline), a table of numbers pretrained vs
scratch per task (mean ± std over runs, n), one sentence per claim of the paper decided by
`bertviz_landscape.report.claims` from the analysis JSONs, and every figure of
``figures/figures.json`` (drawn first by `bertviz_landscape.plots.results.draw_all` when absent).
"""

from __future__ import annotations

from bertviz_landscape.report.claims import CLAIMS, Verdict, decide_all  # noqa: F401
from bertviz_landscape.report.writer import write_report  # noqa: F401
