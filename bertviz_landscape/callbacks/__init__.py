"""Lightning callbacks: per-step weight snapshots (the trajectory), epoch checkpoints for resuming."""

from bertviz_landscape.callbacks.resume import EpochCheckpoint
from bertviz_landscape.callbacks.weight_snapshots import SnapshotBudgetError, WeightSnapshots

__all__ = ["EpochCheckpoint", "WeightSnapshots", "SnapshotBudgetError"]
