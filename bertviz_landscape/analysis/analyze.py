"""One analysis, run and written: what `bertviz-analyze`, the Python API and the demo's analysis
stages call.

`analyze(req)` looks the analysis ``req.name`` up in the registry, checks ``req.output`` writable
before any work, calls its spec's adapter with the request and writes the JSON atomically (an
existing JSON of other inputs is kept unless ``req.overwrite``). Returns the analysis JSON. Its
numbers reach W&B through the one W&B writer (`publish.wandb_media.log_analysis`), which the
callers above this floor call when ``req.wandb.enabled``.
"""

from __future__ import annotations

import logging

from bertviz_landscape.analysis.common import prepare_output, write_result
from bertviz_landscape.analysis.registry import get
from bertviz_landscape.analysis.request import AnalyzeRequest

log = logging.getLogger("bertviz_landscape.analysis")


def analyze(req: AnalyzeRequest) -> dict:
    """The analysis `req` names, its JSON written to `req.output`; returns the JSON."""
    name = req.name
    spec = get(name)
    output = prepare_output(req.output)
    result = spec.run(req)
    write_result(output, result, overwrite=req.overwrite)
    log.info("analysis=%s written: %s", name, output)
    return result
