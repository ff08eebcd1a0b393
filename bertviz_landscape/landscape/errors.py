"""The one error the landscape engine raises for bad input: it names the problem."""


class LandscapeError(ValueError):
    """Bad landscape input (checkpoints, grid, shards, directions); nothing is written."""
