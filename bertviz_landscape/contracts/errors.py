"""Bad input: the errors every entrypoint reports as one line naming the problem, exit status 2.

Anything else that escapes an entrypoint is a bug and keeps its traceback.
"""

from __future__ import annotations

EXIT_BAD_INPUT = 2


def exit_on_bad_input(program: str, function, *args, errors: tuple[type[BaseException], ...] = ()):
    """`function(*args)`; a BadInput (or one of `errors`, what a command also counts as bad input)
    becomes one line on stderr (and in the log), exit status 2."""
    import logging
    import sys

    try:
        return function(*args)
    except Exception as err:
        cause = err if isinstance(err, errors) else bad_input_cause(err)
        if cause is None:
            raise
        print(f"{program}: error: {cause}", file=sys.stderr)
        logging.getLogger("bertviz_landscape").error("%s", cause)
        sys.exit(EXIT_BAD_INPUT)


def bad_input_cause(err: BaseException) -> BadInput | None:
    """`err` when it is a BadInput, or the BadInput that a config resolver raised (OmegaConf
    wraps it in an InterpolationResolutionError); None for anything else (a bug)."""
    seen = 0
    while err is not None and seen < 8:
        if isinstance(err, BadInput):
            return err
        if type(err).__module__.split(".")[0] != "omegaconf":
            return None
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


class BadInput(ValueError):
    """Bad input (a file, a row, a key, a request); nothing was written."""


class CheckpointError(BadInput):
    """A checkpoint directory that is missing, incomplete, corrupt or of another architecture."""


class OutputError(BadInput):
    """An output that cannot be written: a full disk, a read-only place, a directory in the way."""


class LandscapeError(BadInput):
    """Bad landscape input (checkpoints, grid, shards, directions); nothing is written."""
