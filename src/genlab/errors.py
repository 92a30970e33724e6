"""User-facing errors: bad config or data, reported as one line instead of a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager


class GenlabError(Exception):
    """A problem the user can fix (missing data, bad value); the message says how."""


EXIT_USER_ERROR = 2


@contextmanager
def user_errors_exit() -> Iterator[None]:
    """Turn a GenlabError into `genlab: error: ...` on stderr and exit code 2.

    Set HYDRA_FULL_ERROR=1 to get the full traceback instead.
    """
    try:
        yield
    except Exception as err:
        cause = find_user_error(err)
        if cause is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"genlab: error: {cause}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_USER_ERROR) from None


def find_user_error(err: BaseException | None) -> GenlabError | None:
    """The GenlabError behind `err`, also when Hydra's instantiate wrapped it in its own error."""
    while err is not None:
        if isinstance(err, GenlabError):
            return err
        err = err.__cause__
    return None
