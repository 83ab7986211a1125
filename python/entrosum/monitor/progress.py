"""Progress bars for long fits: one line that shows the iteration, the ELBO F, the entropy sum S and their gap.

tqdm draws it when installed (``pip install "entrosum[progress]"``); otherwise a plain-text bar does: on a
terminal it redraws one line in place, elsewhere (a log file, a pipe) it prints a line every few seconds.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

#: Seconds between plain-text updates written to a terminal, and to anything else.
TERMINAL_INTERVAL = 0.1
LOG_INTERVAL = 5.0
#: Draw with tqdm when it is installed (set False for the plain-text bar).
USE_TQDM = True


def _postfix(record: dict[str, Any]) -> str:
    return f"F={record['elbo']:+.6e} S={record['entropy_sum']:+.6e} gap={record['gap']:+.2e}"


def _tqdm() -> Any:
    """Return the tqdm class, or None when tqdm is not installed."""
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class TextProgress:
    """A progress bar in plain text, redrawn in place on a terminal and printed now and then elsewhere."""

    def __init__(self, total: int, description: str, stream: TextIO) -> None:
        self.total = total
        self.description = description
        self.stream = stream
        self.terminal = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = TERMINAL_INTERVAL if self.terminal else LOG_INTERVAL
        self.started = time.perf_counter()
        self.shown_at = -float("inf")
        self.last: dict[str, Any] | None = None
        self.shown: dict[str, Any] | None = None
        self.width = 0

    def _text(self, record: dict[str, Any]) -> str:
        iteration = int(record["iteration"])
        elapsed = time.perf_counter() - self.started
        return f"{self.description}: iter {iteration}/{self.total} {_postfix(record)} [{elapsed:.1f}s]"

    def _show(self, record: dict[str, Any]) -> None:
        text = self._text(record)
        if self.terminal:
            self.stream.write("\r" + text.ljust(self.width))
            self.width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.shown_at = time.perf_counter()
        self.shown = record

    def update(self, record: dict[str, Any]) -> None:
        """Take an iteration's record (a dict of the monitor's fields); redraw at most every interval."""
        self.last = record
        if time.perf_counter() - self.shown_at >= self.interval:
            self._show(record)

    def close(self) -> None:
        """Show the last state; the caller prints the summary line after it."""
        if self.last is not None and self.last is not self.shown:
            self._show(self.last)
        if self.terminal and self.width:
            self.stream.write("\n")
            self.stream.flush()


class TqdmProgress:
    """The same bar drawn by tqdm."""

    def __init__(self, tqdm: Any, total: int, description: str, stream: TextIO) -> None:
        self.bar = tqdm(total=total, desc=description, unit="it", file=stream, leave=True, dynamic_ncols=True)

    def update(self, record: dict[str, Any]) -> None:
        """Take an iteration's record (a dict of the monitor's fields) and advance the bar to it."""
        self.bar.set_postfix_str(_postfix(record), refresh=False)
        self.bar.update(int(record["iteration"]) - self.bar.n)

    def close(self) -> None:
        """Close the bar (it stays on screen)."""
        self.bar.close()


def make_progress(total: int, description: str, stream: TextIO | None = None) -> Any:
    """Make a progress bar over ``total`` iterations on ``stream`` (default ``sys.stderr``).

    It is tqdm's when installed (and ``USE_TQDM``), else the plain-text one. It offers ``update(record)``
    and ``close()``.
    """
    stream = stream or sys.stderr
    tqdm = _tqdm() if USE_TQDM else None
    if tqdm is not None:
        return TqdmProgress(tqdm, total, description, stream)
    return TextProgress(total, description, stream)
