"""GLUE data: the task registry, the loaders (hub or TSV directory) and the LightningDataModule."""

from bertviz_landscape.training.data.glue import GlueDataError, load_glue_split, select_subset
from bertviz_landscape.training.data.tasks import TASKS, GlueTask, UnknownTaskError, get_task

__all__ = [
    "TASKS",
    "GlueTask",
    "UnknownTaskError",
    "get_task",
    "GlueDataError",
    "load_glue_split",
    "select_subset",
]
