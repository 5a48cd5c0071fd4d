"""Reading TOML catalogs: the packaged file plus optional user files that add or override entries.

Errors name the file and the key; a user file that does not parse says so in one line.
"""
from __future__ import annotations

import codecs
import json
import stat
import tomllib
from importlib import resources
from pathlib import Path

from simulator.errors import ConfigError, excerpt


MAX_TEXT_BYTES = 256 * 2 ** 20     # far beyond any catalog, measurement table or result infersim writes


def names_a_file(name: str) -> bool:
    """Whether `name`, which may be a catalog entry's name or a path, is an existing file. A name the file
    system refuses to look up (longer than it takes, a NUL byte) names no file."""
    try:
        return Path(name).is_file()
    except (OSError, ValueError):
        return False


def read_text(path: str | Path) -> str:
    """A user file's text (UTF-8; a byte-order mark, as spreadsheets and some editors write, is dropped), or
    a one-line ConfigError naming the file: missing, a folder, a device, pipe or socket (no size to check
    before reading: /dev/zero never ends, a pipe waits for a writer), unreadable, larger than
    MAX_TEXT_BYTES, holding NUL bytes (a binary file), not UTF-8."""
    path = Path(path)
    try:
        status = path.stat()
        if stat.S_ISDIR(status.st_mode):
            raise ConfigError(f"{path}: is a folder, not a file")
        if not stat.S_ISREG(status.st_mode):
            raise ConfigError(f"{path}: not a regular file (a device, pipe or socket); give a file's path")
        if status.st_size > MAX_TEXT_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_TEXT_BYTES // 2 ** 20} MiB; not a file infersim reads")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc.__class__.__name__})") from None
    # UTF-16 text (another editor's "Unicode") holds NUL bytes too, after its byte-order mark
    if b"\0" in data and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ConfigError(f"{path}: not a text file (it holds NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text (save it as UTF-8)") from None


def read_json(path: str | Path):
    """Parse one JSON file (any JSON value; callers check its shape), every failure a one-line ConfigError
    naming the file."""
    return parse_json(str(Path(path)), read_text(path))   # read_text's errors (file not found, ...) stand


def parse_json(where: str, text: str):
    """JSON text's value, or a one-line ConfigError naming `where` and what is wrong (a syntax error's
    line and column, nesting too deep, a number too long)."""
    try:
        return json.loads(text, object_pairs_hook=_object_without_repeats)
    except _RepeatedKey as exc:
        raise ConfigError(f"{where}: key {excerpt(exc.args[0])} appears twice in one object with two values; "
                          "keep one") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{where}: not valid JSON ({_parse_limit(exc)})") from None


class _RepeatedKey(Exception):
    """A JSON object gives one key two values (json.loads keeps the last without a word)."""


def _object_without_repeats(pairs: list) -> dict:
    """The object; a key repeated with the same value is one key (an MLCommons system description of v4.1
    repeats network_speed_mbit), with another value a _RepeatedKey."""
    result = {}
    for key, value in pairs:
        if key in result and result[key] != value:
            raise _RepeatedKey(key)
        result[key] = value
    return result


def _parse_limit(exc: Exception) -> str:
    """What a parser's own limit refused: nesting deeper than Python recurses, or an integer longer than
    Python converts (4,300 digits)."""
    return "nested too deeply" if isinstance(exc, RecursionError) else "a number too long to read"


def read_toml(path: str | Path) -> dict:
    """Parse one TOML file, turning every failure into a one-line ConfigError naming the file."""
    path = Path(path)
    text = read_text(path)
    if not text.strip():
        raise ConfigError(f"{path}: file is empty")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({_parse_limit(exc)})") from None


def packaged_toml(package: str, name: str) -> dict:
    """Parse a catalog file shipped inside `package` (e.g. `simulator.catalog`)."""
    with resources.as_file(resources.files(package) / name) as path:
        return read_toml(path)


def merged_catalog(package: str, name: str, user_files=()) -> dict[str, dict]:
    """The packaged catalog with each user file's tables added or overriding by key, in order."""
    tables = dict(packaged_toml(package, name))
    for user_file in user_files or ():
        for key, table in read_toml(user_file).items():
            if not isinstance(table, dict):
                raise ConfigError(f"{user_file}: top-level key {key!r} must be a table like [{key}]")
            check_entry_name(f"{user_file}: [{key}]", key)
            tables[key] = {**tables.get(key, {}), **table, "_file": str(user_file)}
    return tables


def check_entry_name(where: str, name: str) -> None:
    """A catalog entry's name is lower case: lookups (`--gpu H200`) compare lower case, so `[MyGPU]` could
    never be found, and `[H200]` would sit beside the shipped `[h200]` instead of overriding it."""
    if name != name.lower():
        raise ConfigError(f"{where}: catalog names are lower case (names are looked up case-insensitively); "
                          f"write [{name.lower()}]")


def require_text(where: str, value) -> str:
    """Return `value` if it is a string (a name, a label, a source note), else raise naming `where`."""
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string in quotes, got {excerpt(value)[1:-1]} "
                          f"({type(value).__name__})")
    return value


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char < " " or char == "\x7f":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'
