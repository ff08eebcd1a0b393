"""One analysis, run and written: what `bertviz-analyze`, the Python API and the demo's analysis
stages call.

`analyze(req)` looks the analysis ``req.name`` up in the registry, checks ``req.output`` writable
before any work, calls its spec's adapter with the request, writes the JSON atomically (an
existing JSON of other inputs is kept unless ``req.overwrite``) and, with ``req.wandb.enabled``,
puts its numbers in a W&B run's summary. Returns the analysis JSON.
"""

from __future__ import annotations

import logging

from bertviz_landscape.analysis.common import log_to_wandb, prepare_output, write_result
from bertviz_landscape.analysis.registry import get
from bertviz_landscape.analysis.request import AnalyzeRequest

log = logging.getLogger("bertviz_landscape.analysis")


def analyze(req: AnalyzeRequest) -> dict:
    """The analysis `req` names, its JSON written to `req.output` (and its numbers to W&B when
    `wandb.enabled`); returns the JSON."""
    name = req.name
    spec = get(name)
    output = prepare_output(req.output)
    result = spec.run(req)
    write_result(output, result, overwrite=req.overwrite)
    log.info("analysis=%s written: %s", name, output)
    if req.wandb.enabled:
        where = log_to_wandb(result, req.wandb.to_dict(), output)
        log.info("W&B run: %s", where)
    return result
