"""Bad input: the errors every entrypoint reports as one line naming the problem, exit status 2.

Anything else that escapes an entrypoint is a bug and keeps its traceback.
"""

EXIT_BAD_INPUT = 2


def exit_on_bad_input(program: str, function, *args):
    """`function(*args)`; a BadInput becomes one line on stderr (and in the log), exit status 2."""
    import logging
    import sys

    try:
        return function(*args)
    except BadInput as err:
        print(f"{program}: error: {err}", file=sys.stderr)
        logging.getLogger("bertviz_landscape").error("%s", err)
        sys.exit(EXIT_BAD_INPUT)


class BadInput(ValueError):
    """Bad input (a file, a row, a key, a request); nothing was written."""


class CheckpointError(BadInput):
    """A checkpoint directory that is missing, incomplete, corrupt or of another architecture."""


class OutputError(BadInput):
    """An output that cannot be written: a full disk, a read-only place, a directory in the way."""


class LandscapeError(BadInput):
    """Bad landscape input (checkpoints, grid, shards, directions); nothing is written."""
