"""One registry per extension point: batching policies, routers, arrival processes, length
distributions, topology builders, measurement import formats.

Adding an extension is one class in one file with a decorator:

    @BATCHING.register
    class ShortestPromptFirst(BatchingPolicy):
        name = "shortest-prompt-first"
        ...

The CLI's choice lists, `infersim catalog` and the docs read the registry, so nothing else lists the
names. A registry is a read-only mapping name -> class (in registration order) plus a one-line summary
of each entry (its docstring's first line). A plain function registers too, named explicitly:

    @BUILDERS.register(name="nvl72")
    def nvl72(gpus=72, ...): ...
"""
from __future__ import annotations

import functools
from collections.abc import Mapping

from simulator.errors import ConfigError


class Registry(Mapping):
    """Name -> class for one extension point. `kind` names the point in errors ('router')."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, type] = {}

    def register(self, cls: type | None = None, *, name: str | None = None) -> type:
        """Class decorator: register `cls` under its `name` attribute (a new name, or the same class again);
        `register(name=...)` names an entry that has no `name` attribute (a builder function)."""
        if cls is None:
            return functools.partial(self.register, name=name)
        name = name if name is not None else getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{self.kind} {cls.__qualname__}: needs a non-empty string `name`")
        existing = self._entries.get(name)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"{self.kind} {name!r} is already registered by {existing.__qualname__}")
        self._entries[name] = cls
        return cls

    def get_class(self, name: str, field: str | None = None) -> type:
        """The class registered as `name`, or a one-line ConfigError listing the choices."""
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ConfigError(f"{field or self.kind}: {name!r} is not one of {', '.join(self._entries)}") from None

    def summaries(self) -> dict[str, str]:
        """Name -> the first sentence of the entry's docstring (what `infersim catalog` and the docs show)."""
        return {name: summary(entry) for name, entry in self._entries.items()}

    def __getitem__(self, name: str) -> type:
        return self._entries[name]

    def __contains__(self, name) -> bool:
        """False for anything not registered, an unhashable value (a TOML array given as a kind) too."""
        try:
            return name in self._entries
        except TypeError:
            return False

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def summary(entry) -> str:
    """The first sentence of an object's docstring, its wrapped lines joined ('' without one)."""
    doc = (entry.__doc__ or "").strip()
    paragraph = " ".join(line.strip() for line in doc.split("\n\n", 1)[0].splitlines())
    sentence, dot, _ = paragraph.partition(". ")
    return sentence + dot.strip()
