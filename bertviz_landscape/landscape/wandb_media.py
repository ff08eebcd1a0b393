"""The surface in W&B — moved to `bertviz_landscape.wandb_media` (image, table, line plots,
interactive 3D, artifact); kept here so `from bertviz_landscape.landscape.wandb_media import
log_surface` keeps working."""

from bertviz_landscape.wandb_media import log_surface, log_surface_media, surface_table  # noqa: F401
