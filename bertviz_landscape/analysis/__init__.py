"""The paper's analyses as numbers: `bertviz-analyze analysis=<name>` (conf/analyze.yaml).

One module per analysis, each with one plain typed function returning the analysis JSON
(the contract: analysis/common.py): `trajectory`, `consistency`, `flatness`, `longtrain`,
`layers`; `noise` has the standard errors they share. The Hydra edge is analysis/entrypoint.py;
the name → function table is analysis/registry.py.
"""

from bertviz_landscape.analysis.common import register_resolvers

register_resolvers()
