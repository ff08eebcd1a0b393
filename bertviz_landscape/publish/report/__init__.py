"""The report of one experiment directory: ``report.md`` and a self-contained ``report.html``
(figures embedded as base64 PNGs; the interactive 3D surfaces linked beside it).

Contents: the runs (dev metric vs majority baseline), one sentence per claim of the paper decided
across seeds by `bertviz_landscape.publish.report.claims` (statistics: `analysis.evidence`) from the
analysis JSONs' per-run numbers, the numbers per task pretrained vs scratch (mean ± std, n, 95% CI
over seeds) and per seed, every figure of the figures catalogue (``figures/figures.json``) and
each claim's figure. The report draws nothing: `bertviz_landscape.publish.publisher.write_report`
draws the figures when the catalogue is missing and the claims' figures, then writes it
(`build_report`, then `write_files`).
"""

from __future__ import annotations

from bertviz_landscape.publish.report.claims import CLAIMS, Verdict, decide_all  # noqa: F401
from bertviz_landscape.publish.report.writer import build_report, write_files  # noqa: F401
