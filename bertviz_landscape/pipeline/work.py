"""The ``work`` entry of a stage record: the useful work of each stage kind, counted while it runs.

A stage runs inside `metering()` (contracts/work.py; `metered` wraps a stage of the plan so):
every place that runs a model reports each pass over a batch of the examples it evaluated, and
each memory-bound update reports its bytes.
What each stage kind counts (all in float32):

- ``train`` — every training step is one ``train`` pass (forward + backward: 3× the forward's
  matrix products) over its batch; every validation batch (Lightning's sanity check included) a
  forward pass; AdamW's state traffic per optimiser step, 28 bytes per parameter with a gradient
  (read θ, g, m, v; write θ, m, v); each full snapshot's delta pass, read θ_t and θ0 and write
  the rounded delta (8 + 2 bytes per parameter for a bf16/fp16 delta).
- ``line`` / ``plane`` (a landscape) — every grid point evaluated (not those a resumed surface
  already had) is one forward pass per batch of each split, over the layers the hidden-state
  cache leaves to run (+ the cache's one fill and its check on the first batch); the weight
  update per point, 12 bytes per parameter per direction used (p = c + α·δ1, p += β·δ2), 8 at
  the centre (p ← c).
- an analysis (flatness, layers, hessian, sharpness, basins, trajectory, path loss …) — the same
  counts from the engine it calls (landscape evaluations, `mean_loss` forward passes,
  `loss_and_gradient` train passes, Hessian-vector products at 9× a forward, CKA's forward
  passes); analyses that only read files (consistency, longtrain) count nothing.

``flops`` is what the kernels did (batches padded to their longest sequence); ``flops_unpadded``
the same products over the real tokens. benchmarks/roofline.py reads these entries.
"""

from __future__ import annotations

import dataclasses

from bertviz_landscape.contracts.work import Tally, metering
from bertviz_landscape.pipeline.runner import Stage

__all__ = ["metered", "metering", "stage_kind", "stage_work"]

LANDSCAPE_KINDS = ("line", "plane")


def stage_kind(stage_name: str) -> str:
    """The kind of a stage from its name: ``train``, ``line``, ``plane``, an analysis's name, or
    the name itself (figures, wandb, report: no model runs)."""
    return stage_name.split(" ", 1)[0]


def training_work(tally: Tally) -> dict:
    """A training run: train passes, validation forwards, AdamW and snapshot-delta bytes."""
    return {"kind": "train", **tally.entry()}


def landscape_work(tally: Tally, kind: str = "plane") -> dict:
    """A line or plane: forward passes (points × batches) and the weight update per point."""
    if kind not in LANDSCAPE_KINDS:
        raise ValueError(f"a landscape is one of {LANDSCAPE_KINDS}, not {kind!r}")
    return {"kind": kind, **tally.entry()}


def analysis_work(tally: Tally, name: str) -> dict:
    """An analysis: whatever its measures evaluated (nothing for those that only read files)."""
    return {"kind": name, **tally.entry()}


def stage_work(stage_name: str, tally: Tally) -> dict:
    """The ``work`` entry for a finished stage (its kind from its name)."""
    kind = stage_kind(stage_name)
    if kind == "train":
        return training_work(tally)
    if kind in LANDSCAPE_KINDS:
        return landscape_work(tally, kind)
    return analysis_work(tally, kind)


def metered(stage: Stage) -> Stage:
    """`stage` with its action run inside a meter and its ``work`` the entry of what it counted
    (asked by the runner after the action; a stage that ran no model records zeros)."""
    counted: dict = {}

    def action():
        with metering() as tally:
            stage.action()
        counted["work"] = stage_work(stage.name, tally)

    return dataclasses.replace(stage, action=action, work=lambda: counted.get("work"))
