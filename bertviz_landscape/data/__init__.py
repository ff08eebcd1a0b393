"""GLUE data: the task registry, the loaders (hub or TSV directory) and the LightningDataModule."""

from bertviz_landscape.data.tasks import TASKS, GlueTask, UnknownTaskError, get_task
from bertviz_landscape.data.glue import GlueDataError, load_glue_split, select_subset

__all__ = ["TASKS", "GlueTask", "UnknownTaskError", "get_task", "GlueDataError", "load_glue_split", "select_subset"]
