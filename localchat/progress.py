"""A one-line progress display on standard error, only when it is a terminal.

    from localchat.progress import TerminalProgress
    with TerminalProgress("backup") as bar:          # silent unless stderr is a terminal
        backup_store("/tmp/b.zip", progress=bar)     # bar(done_bytes, total_bytes, items, of)
    with TerminalProgress("imported", unit="records") as tick:
        import_path(s, "conversations.zip", progress=tick)   # tick(count): no total known

It redraws at most ten times a second with ``\\r`` and ends the line when
closed. Given a total (backup, restore) it shows items done, bytes done of the
total and the rate (``backup  12/40 files  310.5/912.0 MB  88.1 MB/s``); given
only a running count (an import or export, whose length is unknown until read)
the count and its rate (``imported 5,000 records (41,200/s)``). Nothing is
written when the stream is not a terminal (a pipe, a file, a CI log) or when
``enabled=False`` (``--quiet``), so scripts see only the command's own output.

No progress library: the runtime dependencies stay peewee and platformdirs,
and what is needed here (one redrawn line of counts and a rate) is forty
lines. tqdm or rich would add a dependency (rich comes only with the ``app``
extra) for features these commands do not use.
"""

from __future__ import annotations

import sys
import time
from typing import IO, Any

__all__ = ["TerminalProgress"]

_MB = 1e6


class TerminalProgress:
    """A callable ``(done, total=None, items=0, of=0)`` drawing one line on a terminal."""

    def __init__(
        self,
        label: str,
        *,
        stream: IO[str] | None = None,
        enabled: bool | None = None,
        interval: float = 0.1,
        unit: str = "files",
    ) -> None:
        self.label, self.unit, self.interval = label, unit, interval
        self.stream = stream if stream is not None else sys.stderr
        is_tty = getattr(self.stream, "isatty", lambda: False)()
        self.enabled = is_tty if enabled is None else bool(enabled) and is_tty
        self.started = time.monotonic()
        self._last = 0.0
        self._drawn = False
        self._state = (0, 0, 0, 0)
        self._counting = False

    def __call__(self, done: int, total: int | None = None, items: int = 0, of: int = 0) -> None:
        self._counting = total is None
        self._state = (done, total or 0, items, of)
        now = time.monotonic()
        if self.enabled and now - self._last >= self.interval:
            self._last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        done, total, items, of = self._state
        if self._counting:
            rate = done / max(now - self.started, 1e-6)
            self.stream.write(f"\r{self.label} {done:,} {self.unit} ({rate:,.0f}/s)")
            self.stream.flush()
            self._drawn = True
            return
        rate = done / max(now - self.started, 1e-6) / _MB
        line = (
            f"{self.label}  {items}/{of} {self.unit}  "
            f"{done / _MB:.1f}/{total / _MB:.1f} MB  {rate:.1f} MB/s"
        )
        self.stream.write("\r" + line.ljust(60))
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Draw the final state and end the line (only if anything was drawn)."""
        if self.enabled and self._drawn:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
