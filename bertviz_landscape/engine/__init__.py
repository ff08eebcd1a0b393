"""The landscape engine: 1D curves J(θ0 + α·δ1) and 2D surfaces J(θ0 + α·δ1 + β·δ2).

Modules, in the paper's words:

(θ0, θ1, θ2 are read by `bertviz_landscape.contracts.checkpoints`; which weights move and the layer map
are `bertviz_landscape.contracts.parameters`: both on the contracts floor below this one.)

- `request`     — the typed `LandscapeRequest`, composed from conf/landscape.yaml and validated once
- `direction_file` — the direction file (Li et al.'s): computed once per surface, loaded by every shard
- `directions`  — δ1, δ2: difference (the paper), random (filter/layer-normalised), pca
- `grid`        — the (α, β) grid and its split into shards
- `evaluator`   — J and metrics at one grid point, at the forward-pass limit
- `shards`      — finished points on disk, resume, merge
- `surface`     — the HDF5 surface file (Li et al.'s key names) and its loader
- `sweep`       — `compute_landscape`: one shard of one landscape as a plain function
- `entrypoint`  — the Hydra edge (`bertviz-landscape`); on the publish floor: it logs W&B media
"""

from bertviz_landscape.contracts.errors import LandscapeError
from bertviz_landscape.engine.surface import Surface, load_surface, write_surface

__all__ = ["LandscapeError", "Surface", "load_surface", "write_surface", "compute_landscape", "merge_parts"]


def __getattr__(name):  # heavy imports (torch, transformers) only when asked for
    if name == "compute_landscape":
        from bertviz_landscape.engine.sweep import compute_landscape  # start-up time: torch on demand

        return compute_landscape
    if name == "merge_parts":
        from bertviz_landscape.engine.shards import merge_parts  # start-up time: torch on demand

        return merge_parts
    raise AttributeError(name)
