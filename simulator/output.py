"""Writing results: JSON documents and CSV tables, always write-then-rename so an interrupted run
never leaves a half-written file (and the output is claimed before the run, so a folder that takes no
files fails at once); reading results CSVs back; a compact human-readable table for the terminal."""
from __future__ import annotations

import atexit
import csv
import io
import json
import math
import os
import re
import secrets
import stat
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np

from simulator.catalog_io import read_text
from simulator.errors import ConfigError, excerpt
from simulator.metrics import request_metrics


def _clean(value):
    """JSON-safe: numpy scalars to Python, NaN/inf to null."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(document: dict) -> str:
    return json.dumps(_clean(document), indent=2, sort_keys=False)


class PendingOutput:
    """A file a command will write, claimed before the work it records starts: missing parent folders are
    created, and a temporary file of our own naming (`.NAME.PID.XXXX.tmp`) is created beside the target,
    which proves the folder takes new files (a read-only folder, procfs, a full disk fail here, not after
    an hour of simulation). `write` fills the temporary file and renames it over the target; `discard`
    removes it. Temporary files of this naming whose process is gone (a killed run) are removed on the way.

    The file gets the mode a plain `open` would give it: the mode of the file it replaces, or 0666 less
    the umask (not the 0600 a private temporary file starts with)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        folder = self.path.parent
        missing = []                       # the folders mkdir creates, deepest first
        try:                               # a name the file system refuses (longer than it takes) fails here
            if self.path.is_dir():
                raise ConfigError(f"{self.path}: is a folder, not a file")
            for parent in (folder, *folder.parents):
                if parent.exists():
                    break
                missing.append(parent)
        except OSError as exc:
            raise ConfigError(f"{excerpt(self.path, 60)}: cannot write it ({_reason(exc)})") from None
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{self.path}: cannot create the folder {folder} ({_reason(exc)})") from None
        _CREATED.extend(missing)
        remove_stale_temporaries(self.path)
        fd = None
        while fd is None:
            # The name is noted before the file exists, so a Ctrl-C landing between creating it and noting
            # it cannot leak it (any thread may take the signal: masking it in this one would not do).
            self.tmp = folder / f".{self.path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
            _PENDING.add(self.tmp)
            try:
                fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
            except FileExistsError:
                _PENDING.discard(self.tmp)
            except OSError as exc:
                _PENDING.discard(self.tmp)
                raise ConfigError(f"{self.path}: cannot write in {folder} ({_reason(exc)})") from None
        try:
            os.fchmod(fd, _mode_for(self.path))
        finally:
            os.close(fd)

    def write(self, content: str | bytes | Callable[[BinaryIO], None]) -> Path:
        """Write `content` (text, bytes, or a function writing to a binary handle) and rename it into place."""
        try:
            with open(self.tmp, "wb") as handle:
                if callable(content):
                    content(handle)
                else:
                    handle.write(content.encode("utf-8") if isinstance(content, str) else content)
                handle.flush()
                os.fsync(handle.fileno())      # the rename must not land before the bytes (ext4, xfs)
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.discard()
            raise ConfigError(f"{self.path}: cannot write ({_reason(exc)})") from None
        except BaseException:
            self.discard()
            raise
        _PENDING.discard(self.tmp)
        return self.path

    def discard(self) -> None:
        _PENDING.discard(self.tmp)
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass


_PENDING: set[Path] = set()     # temporary files this process created and has not renamed yet
_CREATED: list[Path] = []       # folders PendingOutput created for outputs, deepest first


def discard_pending() -> None:
    """Remove this process's unfinished temporary files (an error or Ctrl-C before the write), and the
    folders it created for them that nothing else went into since (a written output keeps its own)."""
    for tmp in list(_PENDING):
        _PENDING.discard(tmp)
        try:
            tmp.unlink()
        except OSError:
            pass
    for folder in _CREATED:
        try:
            folder.rmdir()              # only an empty folder goes
        except OSError:
            pass
    _CREATED.clear()


atexit.register(discard_pending)


def _reason(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True        # someone else's process: alive, and not ours to judge
    return True


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Delete `.NAME.PID.XXXX.tmp` files beside `path` left by a process that no longer runs."""
    path = Path(path)
    pattern = re.compile(r"\." + re.escape(path.name) + r"\.(\d+)\.[A-Za-z0-9_]+\.tmp")
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass
    return removed


def write_atomic(path: str | Path, content: str | bytes | Callable[[BinaryIO], None]) -> Path:
    """Write a whole file under a temporary name and rename it into place (see PendingOutput)."""
    return PendingOutput(path).write(content)


def read_csv_rows(path: str | Path) -> list[dict]:
    """Rows of a results CSV as dicts of strings; a file that is not UTF-8 text or not CSV is a one-line
    error naming it."""
    return csv_rows(str(path), read_text(path))[1]


def csv_rows(where: str, text: str) -> tuple[list[str], list[dict]]:
    """The header and rows (dicts of strings) of a results CSV's text. A torn last line (a killed writer)
    is ignored, as are rows with too few or too many fields; text that is not CSV is a one-line error
    naming `where`."""
    lines = text.splitlines(keepends=True)
    if lines and not text.endswith(("\n", "\r")):
        lines = lines[:-1]                           # torn last line
    try:
        reader = csv.DictReader(lines)
        header = list(reader.fieldnames or [])
        return header, [row for row in reader if None not in row and None not in row.values()]
    except csv.Error as exc:
        raise ConfigError(f"{where}: not valid CSV ({exc})") from None


def rows_to_csv(rows: list[dict], columns: list[str] | None = None) -> str:
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in _clean(row).items()})
    return buffer.getvalue()


def per_request_csv(arrays: dict, dropped: dict | None = None) -> str:
    """One row per request: times in seconds, lengths in tokens, and `drop_reason` (empty for a request
    that finished; otherwise why it did not, as the run's `requests_dropped_by_reason` counts it)."""
    derived = request_metrics(arrays)
    columns = {"request": np.arange(len(arrays["arrival_s"])), **arrays, **derived}
    buffer = io.StringIO()
    names = list(columns)
    buffer.write(",".join(names + ["drop_reason"]) + "\n")
    matrix = [columns[n].tolist() for n in names]
    reasons = {rid: _csv_cell(reason) for rid, reason in (dropped or {}).items()}
    for rid, row in enumerate(zip(*matrix)):
        buffer.write(",".join("" if isinstance(v, float) and not math.isfinite(v) else repr(v) if isinstance(v, float)
                              else str(v) for v in row) + "," + reasons.get(rid, "") + "\n")
    return buffer.getvalue()


def _csv_cell(text: str) -> str:
    text = str(text)
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n\r') else text


def format_number(value) -> str:
    """The one way tables, summaries and progress lines print a number: from 10,000 up whole with
    thousands separators (1,266,450), below that 4 significant figures (0.1234, 812.5), and from 1e15 up
    in exponent form (1.234e+300, not three hundred digits); nan and inf as words. Text and booleans
    print as they are."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"
    if abs(value) >= 1e15:
        return f"{value:.4g}"
    if abs(value) >= 1e4:
        return f"{value:,.0f}"
    return str(value) if isinstance(value, int) else f"{value:.4g}"


def format_table(rows: list[dict], columns: list[str] | None = None, indent: str = "") -> str:
    """Aligned text table (numbers by `format_number`; text left-aligned, numbers right-aligned)."""
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    cells = [[format_number(row.get(c, "")) if row.get(c) is not None else "" for c in columns] for row in rows]
    numeric = [all(isinstance(row.get(c), (int, float, np.generic)) or row.get(c) is None for row in rows)
               for c in columns]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [indent + "  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += [indent + "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(r, widths, numeric)).rstrip()
              for r in cells]
    return "\n".join(lines)


def format_summary(document: dict) -> str:
    """Key: value lines for a single result (nested tables flattened with dots); a list of tables (plan
    candidates, the sizes searched) as an indented table under its key; numbers by `format_number`."""
    lines = []

    def walk(prefix, value):
        if isinstance(value, (dict, list)) and not value:
            return                      # an empty table or list says nothing on a terminal
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(value, list) and all(isinstance(v, dict) for v in value):
            lines.append(f"{prefix}:")
            lines.append(format_table(value, indent="  "))
        elif isinstance(value, list):
            lines.append(f"{prefix}:")
            lines.extend(f"  {format_number(v)}" for v in value)
        else:
            lines.append(f"{prefix:<34} {format_number(value)}")
    walk("", document)
    return "\n".join(lines)
