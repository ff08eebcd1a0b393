"""The paper's analyses as numbers: `bertviz-analyze analysis=<name>` (conf/analyze.yaml).

One module per analysis, each with one plain typed function returning the analysis JSON
(the contract: analysis/common.py) and its `SPEC` (analysis/spec.py: what it reads, its report
rows, figures and claims): `trajectory`, `consistency`, `flatness`, `longtrain`, `layers`;
`noise` has the standard errors they share. The Hydra edge is analysis/entrypoint.py; the
registry (analysis/registry.py) finds the specs in the modules.
"""

from bertviz_landscape.analysis.common import register_resolvers

register_resolvers()
