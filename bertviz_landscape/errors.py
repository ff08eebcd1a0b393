"""Bad input: the errors every entrypoint reports as one line naming the problem, exit status 2.

Anything else that escapes an entrypoint is a bug and keeps its traceback.
"""

EXIT_BAD_INPUT = 2


class BadInput(ValueError):
    """Bad input (a file, a row, a key, a request); nothing was written."""


class CheckpointError(BadInput):
    """A checkpoint directory that is missing, incomplete, corrupt or of another architecture."""


class OutputError(BadInput):
    """An output that cannot be written: a full disk, a read-only place, a directory in the way."""


class LandscapeError(BadInput):
    """Bad landscape input (checkpoints, grid, shards, directions); nothing is written."""
