"""Lightning callbacks: per-step weight snapshots (the trajectory)."""

from bertviz_landscape.callbacks.weight_snapshots import SnapshotBudgetError, WeightSnapshots

__all__ = ["WeightSnapshots", "SnapshotBudgetError"]
