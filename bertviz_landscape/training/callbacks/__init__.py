"""Lightning callbacks: per-step weight snapshots (the trajectory), per-epoch records, epoch
checkpoints for resuming."""

from bertviz_landscape.training.callbacks.epochs import EpochRecords, read_dev_per_epoch
from bertviz_landscape.training.callbacks.resume import EpochCheckpoint
from bertviz_landscape.training.callbacks.weight_snapshots import (
    SnapshotBudgetError,
    SnapshotRequest,
    WeightSnapshots,
)

__all__ = [
    "EpochCheckpoint",
    "EpochRecords",
    "WeightSnapshots",
    "SnapshotRequest",
    "SnapshotBudgetError",
    "read_dev_per_epoch",
]
