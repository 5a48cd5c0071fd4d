"""Progress of long work on stderr: one line, redrawn in place, shown only when stderr is a terminal and
the work has lasted `DELAY_S` (about 2 s); nothing with `quiet`. The work itself only calls the object,
which records where it is (cheap enough for an engine's step loop); a background thread draws.

The callable every long-running function takes as its `progress` field:

    progress(done, total=None, what="", approximate=False)

    done         how far the work is (a count, or simulated seconds), or None for a phase with no count
    total        where it ends, if known; `approximate`: an estimate ("3 of about 12 search runs")
    what         what is counted, as the line says it after the numbers ("simulated s", "rows fitted")

A run (`run.simulate`) calls it with the simulated seconds and the last arrival (None for closed-loop
users) from a SimPy process as simulated time advances, or with the engines done on its no-SimPy path.

`INFERSIM_PROGRESS=always` shows progress even when stderr is not a terminal and at once (tests, CI logs:
one line per change instead of redrawing); `INFERSIM_PROGRESS=never` hides it.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Callable

from simulator.output import format_number

DELAY_S = 2.0          # work shorter than this shows nothing
REDRAW_S = 0.25
IDLE = (None, None, "", False)     # nothing reported yet


class Progress:
    """See the module docstring. Use as a context manager around the work (the line is cleared after)."""

    def __init__(self, label: str, *, quiet: bool = False, stream=None, delay_s: float = DELAY_S):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        mode = os.environ.get("INFERSIM_PROGRESS", "").strip().lower()
        terminal = _isatty(self.stream)
        forced = mode == "always"
        self.enabled = not quiet and mode != "never" and (terminal or forced)
        self.redraw = terminal                    # a terminal redraws one line; otherwise a line per change
        self.delay_s = 0.0 if forced else delay_s
        self._state = IDLE
        self._shown = None
        self._width = 0
        self._start = time.monotonic()
        self._stop = threading.Event()
        self._thread = None
        self._lock = threading.Lock()

    def __call__(self, done=None, total=None, what: str = "", approximate: bool = False) -> None:
        self._state = (done, total, what, approximate)      # one assignment: the drawing thread reads it whole

    def __enter__(self) -> "Progress":
        self._start = time.monotonic()
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="infersim-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop drawing and clear the line (a terminal), so results print on a clean line."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._lock:
            if self.redraw and self._width:
                self._write("\r" + " " * self._width + "\r")
                self._width = 0
            elif self.enabled and not self.redraw and self._state not in (self._shown, IDLE):
                self._shown = self._state            # a log (forced) also gets where the work ended
                self._write(self.line() + "\n")

    def line(self) -> str:
        """The text the progress line shows now."""
        done, total, what, approximate = self._state
        elapsed = time.monotonic() - self._start
        if done is None:
            body = what or "working"
        elif total:
            share = min(1.0, max(0.0, done / total))
            body = (f"{format_number(done)} of {'about ' if approximate else ''}{format_number(total)}"
                    f"{' ' + what if what else ''} ({share:.0%})")
        else:
            body = f"{format_number(done)}{' ' + what if what else ''}"
        return f"infersim {self.label}: {body}, {elapsed:.0f} s"

    def _run(self) -> None:
        while not self._stop.wait(REDRAW_S):
            if time.monotonic() - self._start >= self.delay_s:
                self.draw()

    def draw(self) -> None:
        with self._lock:
            if self.redraw:
                text = self.line()
                self._write("\r" + text.ljust(self._width))
                self._width = len(text)
            elif self._state != self._shown:
                self._shown = self._state
                self._write(self.line() + "\n")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):      # a closed or broken stderr must not stop the work
            self._stop.set()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
