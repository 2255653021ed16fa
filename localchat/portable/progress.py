"""A one-line progress counter on stderr, shown only when stderr is a terminal.

    from localchat.portable.progress import Progress
    with Progress("imported", quiet=False) as tick:
        for n in range(1, 5001):
            tick(n)            # "imported 5,000 records (41,200/s)", redrawn at most 5x a second

No progress library: the runtime dependencies stay peewee and platformdirs,
and a counter with a rate is all a stream of unknown length can honestly show
(a bar needs a total; a ChatGPT json or an llm database has none until read).
When stderr is not a terminal (a pipe, a log file, a test) nothing is written.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO

__all__ = ["Progress"]


class Progress:
    """Callable with the running count; a context manager that ends the line."""

    def __init__(self, label: str, *, quiet: bool = False, stream: IO[str] | None = None):
        self.stream = sys.stderr if stream is None else stream
        self.label = label
        self.enabled = not quiet and bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.monotonic()
        self.last = 0.0
        self.shown = False

    def __call__(self, count: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        rate = count / max(now - self.start, 1e-9)
        self.stream.write(f"\r{self.label} {count:,} records ({rate:,.0f}/s)")
        self.stream.flush()
        self.shown = True

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
