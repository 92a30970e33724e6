"""A progress bar for the waits outside Lightning's loops (tokenizing, a classifier's training,
checking image files): on a terminal only, so that logs and pipes stay plain lines."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
    """`items`, drawn as a bar on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        yield from items
        return
    from tqdm.auto import tqdm

    yield from tqdm(items, total=total, desc=description, leave=False, dynamic_ncols=True)
