"""Token-length distributions for prompts and outputs: fixed, uniform, lognormal, empirical.

Each distribution is a frozen dataclass registered in `LENGTHS` under its `name` (a workload file's
`kind`); it says which table keys it takes (`keys`), how it reads a table (`from_table`) and, after
`flag_prefix:`, the command-line form (`from_flag`, described by `flag_syntax`).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from simulator.catalog_io import read_text
from simulator.errors import ConfigError, excerpt, reject_unknown_keys, require_choice, require_number
from simulator.registry import Registry

MAX_TOKENS = 10_000_000
GUIDE_BINS_PER_VALUE = 8    # an empirical distribution's sampling table: a step or two from each uniform to its value
LENGTHS = Registry("length distribution")


def _resolve(path, base_dir: Path | None) -> Path:
    path = Path(path)
    return path if path.is_absolute() or base_dir is None else base_dir / path


@LENGTHS.register
@dataclass(frozen=True)
class Fixed:
    """Every request the same length: `tokens`."""
    name = "fixed"
    keys = ("tokens",)
    flag_prefix = "fixed"
    flag_syntax = "N"

    tokens: int

    def __post_init__(self):
        require_number("tokens", self.tokens, low=1, high=MAX_TOKENS, integer=True)

    @property
    def mean(self) -> float:
        return float(self.tokens)

    @property
    def maximum(self) -> int:
        return int(self.tokens)

    def sample(self, count: int, rng: np.random.Generator) -> np.ndarray:
        return np.full(count, self.tokens, dtype=np.int64)

    def sample_share(self, count: int, rng: np.random.Generator, share) -> np.ndarray:
        return self.sample(share.count(count), rng)

    @classmethod
    def from_table(cls, table: dict, base_dir: Path | None = None) -> "Fixed":
        return cls(table.get("tokens"))

    @classmethod
    def from_flag(cls, args: str) -> "Fixed":
        return cls(_whole("tokens", args))


@LENGTHS.register
@dataclass(frozen=True)
class Uniform:
    """Whole numbers drawn uniformly from `low` to `high` inclusive."""
    name = "uniform"
    keys = ("low", "high")
    flag_prefix = "uniform"
    flag_syntax = "uniform:LOW,HIGH"

    low: int
    high: int

    def __post_init__(self):
        require_number("low", self.low, low=1, high=MAX_TOKENS, integer=True)
        require_number("high", self.high, low=self.low, high=MAX_TOKENS, integer=True)

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    @property
    def maximum(self) -> int:
        return int(self.high)

    def sample(self, count, rng):
        return rng.integers(self.low, self.high + 1, count, dtype=np.int64)

    @classmethod
    def from_table(cls, table: dict, base_dir: Path | None = None) -> "Uniform":
        return cls(table.get("low"), table.get("high"))

    @classmethod
    def from_flag(cls, args: str) -> "Uniform":
        parts = args.split(",")
        if len(parts) != 2:
            raise ValueError(args)
        return cls(_whole("low", parts[0]), _whole("high", parts[1]))


@LENGTHS.register
@dataclass(frozen=True)
class LogNormal:
    """Lognormal with the given mean and coefficient of variation (of the untruncated distribution),
    rounded and clipped to [low, high]."""
    name = "lognormal"
    keys = ("mean", "cv", "low", "high")
    flag_prefix = "lognormal"
    flag_syntax = "lognormal:MEAN,CV[,LOW,HIGH]"

    mean_tokens: float
    cv: float
    low: int = 1
    high: int = MAX_TOKENS

    def __post_init__(self):
        require_number("cv", self.cv, low=0, low_inclusive=False, high=100)
        require_number("low", self.low, low=1, high=MAX_TOKENS, integer=True)
        require_number("high", self.high, low=self.low, high=MAX_TOKENS, integer=True)
        # outside [low, high] every draw clips to a bound, and the mean a run reports is not the one drawn
        require_number("mean", self.mean_tokens, low=self.low, high=self.high)

    @property
    def mean(self) -> float:
        return float(self.mean_tokens)

    @property
    def maximum(self) -> int:
        return int(self.high)

    def sample(self, count, rng):
        sigma2 = np.log1p(self.cv ** 2)
        mu = np.log(self.mean_tokens) - sigma2 / 2
        values = np.rint(rng.lognormal(mu, np.sqrt(sigma2), count))
        return np.clip(values, self.low, self.high).astype(np.int64)

    @classmethod
    def from_table(cls, table: dict, base_dir: Path | None = None) -> "LogNormal":
        return cls(table.get("mean"), table.get("cv"), table.get("low", 1), table.get("high", MAX_TOKENS))

    @classmethod
    def from_flag(cls, args: str) -> "LogNormal":
        parts = args.split(",")
        if len(parts) not in (2, 4):
            raise ValueError(args)
        bounds = [_whole(name, part) for name, part in zip(("low", "high"), parts[2:])]
        return cls(float(parts[0]), float(parts[1]), *bounds)


@LENGTHS.register
@dataclass(frozen=True)
class Empirical:
    """Lengths drawn from observed values with weights (a histogram of a real dataset)."""
    name = "empirical"
    keys = ("file", "values", "weights")
    flag_prefix = "file"
    flag_syntax = "file:PATH"

    values: tuple
    weights: tuple = field(default=())

    def __post_init__(self):
        object.__setattr__(self, "values", _plain_numbers("values", self.values, low=1, high=MAX_TOKENS, integer=True))
        object.__setattr__(self, "weights", _plain_numbers("weights", self.weights, low=0))
        values, weights = np.asarray(self.values, dtype=float), self._weights
        if values.size == 0:
            raise ConfigError("empirical lengths: no values")
        if weights.shape != values.shape:
            raise ConfigError("empirical lengths: values and weights differ in length")
        if weights.sum() <= 0:
            raise ConfigError("empirical lengths: weights must be >= 0 with a positive sum")

    @property
    def _weights(self) -> np.ndarray:
        """The weights given, else one per value."""
        return np.asarray(self.weights or [1.0] * len(self.values), dtype=float)

    @property
    def mean(self) -> float:
        w = self._weights
        return float(np.dot(self.values, w) / w.sum())

    @property
    def maximum(self) -> int:
        return int(max(self.values))

    @cached_property
    def _inverse_cdf(self) -> tuple:
        """(values, cumulative probabilities, guide), built once: a dataset histogram holds thousands of
        values and a calibration draws millions of lengths from it. guide[b] is the first value whose
        cumulative probability exceeds b / len(guide)."""
        w = self._weights
        cdf = (w / w.sum()).cumsum()
        cdf /= cdf[-1]
        bins = GUIDE_BINS_PER_VALUE * len(cdf)
        return np.asarray(self.values, dtype=np.int64), cdf, cdf.searchsorted(np.arange(bins) / bins, side="right")

    def sample(self, count, rng):
        """The draws numpy's `rng.choice(values, size=count, p=weights)` makes: one uniform each."""
        return self.values_at(self.indices(rng.random(count)))

    def sample_share(self, count, rng, share):
        """`sample(count, rng)` at the positions `share` keeps, taking the same uniforms from `rng` a
        chunk at a time and mapping only the kept ones."""
        return self.values_at(np.concatenate([self.indices(rng.random(size)[where])
                                              for size, where in share.chunks(count)]))

    def counts(self, uniform: np.ndarray) -> np.ndarray:
        """How many of `uniform` draw each value (`np.bincount(indices(uniform))`, 5x faster): a guide bin
        whose every uniform maps to one value is counted whole; only the uniforms of bins that straddle a
        value's edge are mapped one by one."""
        _, _, guide = self._inverse_cdf
        one_value = self._single_value_bins
        bins = np.minimum((uniform * len(guide)).astype(np.int64), len(guide) - 1)
        per_bin = np.bincount(bins, minlength=len(guide))
        straddling = uniform[~one_value[bins]]
        return (np.bincount(guide[one_value], weights=per_bin[one_value], minlength=len(self.values)).astype(np.int64)
                + np.bincount(self.indices(straddling), minlength=len(self.values)))

    @cached_property
    def _single_value_bins(self) -> np.ndarray:
        """Per guide bin, whether every uniform falling in it draws the bin's guide value: that value's
        cumulative-probability interval holds the bin's [b / n, (b + 1) / n) with a margin far wider than
        the rounding of `uniform x n`."""
        _, cdf, guide = self._inverse_cdf
        edges = np.arange(len(guide) + 1) / len(guide)
        margin = 1e-9
        upper_ok = cdf[np.minimum(guide, len(cdf) - 1)] > edges[1:] + margin
        lower_ok = (guide == 0) | (cdf[np.maximum(guide - 1, 0)] < edges[:-1] - margin)
        return upper_ok & lower_ok & (guide < len(cdf))

    def values_at(self, indices: np.ndarray) -> np.ndarray:
        return self._inverse_cdf[0][indices]

    def indices(self, uniform: np.ndarray) -> np.ndarray:
        """The value each uniform draws, as an index into `values`: the first value whose cumulative
        probability exceeds it (as numpy's `choice` maps it). The guide table puts each uniform within a
        step or two of that value, 3-5x faster than choice's binary search."""
        _, cdf, guide = self._inverse_cdf
        index = guide[np.minimum((uniform * len(guide)).astype(np.int64), len(guide) - 1)]
        behind = np.flatnonzero(cdf[index] <= uniform)
        while behind.size:
            index[behind] += 1
            behind = behind[cdf[index[behind]] <= uniform[behind]]
        # a bin's lower edge b / len(guide) can round above a uniform in it: step back where needed
        ahead = np.flatnonzero(index > 0)
        ahead = ahead[cdf[index[ahead] - 1] > uniform[ahead]]
        while ahead.size:
            index[ahead] -= 1
            ahead = ahead[index[ahead] > 0]
            ahead = ahead[cdf[index[ahead] - 1] > uniform[ahead]]
        return index

    @classmethod
    def from_table(cls, table: dict, base_dir: Path | None = None) -> "Empirical":
        if "file" in table:
            beside = [key for key in ("values", "weights") if key in table]
            if beside:
                raise ConfigError(f"give file or values (with weights), not both: {beside[0]} would be ignored")
            return cls.from_file(_resolve(table["file"], base_dir))
        return cls(table.get("values", ()), table.get("weights", ()))

    @classmethod
    def from_flag(cls, args: str) -> "Empirical":
        return cls.from_file(args)

    @classmethod
    def from_file(cls, path: str | Path) -> "Empirical":
        """CSV with header `tokens,count`, or one length per line; lines starting with # are comments."""
        path = Path(path)
        lines = read_text(path).splitlines()
        lines = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
        if not lines:
            raise ConfigError(f"{path}: file is empty")
        values, weights = [], []
        has_header = lines[0].replace(" ", "").lower().startswith("tokens")
        reader = csv.reader(lines[1:] if has_header else lines)
        # Nothing of the file is quoted back: a path typed by mistake (a password database, a key) must not
        # end up in an error message, a terminal log or a sweep's results CSV.
        for number, row in enumerate(reader, start=2 if has_header else 1):
            try:
                value = float(row[0])
                weight = float(row[1]) if len(row) > 1 and row[1].strip() else 1.0
            except (ValueError, IndexError):
                if not values:
                    raise ConfigError(f"{path}: not a length table (a header 'tokens,count' or lines of "
                                      f"'tokens[,count]' numbers)") from None
                raise ConfigError(f"{path}: line {number}: not 'tokens[,count]' numbers") from None
            if len(row) > 2:
                raise ConfigError(f"{path}: line {number}: more than two cells (tokens, count)")
            if not (np.isfinite(value) and 1 <= value <= MAX_TOKENS and value == int(value)):
                raise ConfigError(f"{path}: line {number}: tokens must be a whole number in [1, {MAX_TOKENS}]")
            if not (np.isfinite(weight) and weight >= 0):
                raise ConfigError(f"{path}: line {number}: count must be a finite number >= 0")
            values.append(int(value))
            weights.append(weight)
        try:
            return cls(tuple(values), tuple(weights))
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None


def rescaled_values(values: np.ndarray, counts: np.ndarray, mean: float, cap: int) -> np.ndarray:
    """Whole-number lengths `values`, drawn `counts` times each, scaled so the draws' mean is `mean`
    (clipped to [1, cap], the scale re-solved after clipping); a mean at or above the cap puts every
    length at the cap. Means are exact sums of whole numbers, so a stream's value counts set the same
    scale as its every draw would."""
    require_number("mean", mean, low=1, high=MAX_TOKENS)
    if mean >= cap:
        return np.full(values.shape, cap, dtype=np.int64)
    draws = int(counts.sum())
    if not draws:
        return values.astype(np.int64)

    def draws_mean(lengths: np.ndarray) -> float:
        return int(np.dot(lengths.astype(np.int64), counts)) / draws

    values = values.astype(float)
    factor = mean / draws_mean(values)
    for _ in range(20):
        scaled = np.clip(np.rint(values * factor), 1, cap)
        if abs(draws_mean(scaled) - mean) <= 0.01 * mean:
            break
        factor *= mean / draws_mean(scaled)
    return scaled.astype(np.int64)


def rescale_mean(lengths: np.ndarray, mean: float, cap: int) -> np.ndarray:
    """Lengths scaled so their mean is `mean` (`rescaled_values`)."""
    values, where = np.unique(lengths, return_inverse=True)
    return rescaled_values(values, np.bincount(where), mean, cap)[where]


@dataclass(frozen=True)
class Rescaled:
    """Another distribution's shape at a given mean (a dataset's reference answers rescaled to what a
    model actually generates, or to a run's measured tokens per sample), within its maximum."""
    base: object
    target_mean: float

    def __post_init__(self):
        require_number("mean", self.target_mean, low=1, high=MAX_TOKENS)

    @property
    def mean(self) -> float:
        return float(min(self.target_mean, self.base.maximum))

    @property
    def maximum(self) -> int:
        return self.base.maximum

    def sample(self, count, rng):
        if isinstance(self.base, Empirical):
            return self._draw_empirical(count, rng, None)
        return rescale_mean(self.base.sample(count, rng), self.target_mean, self.base.maximum)

    def sample_share(self, count, rng, share):
        if isinstance(self.base, Empirical):
            return self._draw_empirical(count, rng, share)
        return share.pick(self.sample(count, rng))

    def _draw_empirical(self, count, rng, share):
        """An empirical base's draws, counted per value (the scale needs every draw's length) and kept
        where `share` keeps them (all without one), then scaled."""
        base = self.base
        counts = np.zeros(len(base.values), dtype=np.int64)
        kept = []
        for size, where in (share.chunks(count) if share is not None else ((count, slice(None)),)):
            uniform = rng.random(size)
            counts += base.counts(uniform)
            kept.append(base.indices(uniform[where]))
        scaled = rescaled_values(base.values_at(np.arange(counts.size)), counts, self.target_mean, base.maximum)
        return scaled[np.concatenate(kept)]


def lengths_from_dict(where: str, table: dict, base_dir: Path | None = None):
    """A length table: `kind` names a registered distribution (`fixed`, `uniform`, `lognormal`, `empirical`,
    ...) and the other keys are its `keys`: `{kind = "fixed", tokens = 128}`, `{kind = "uniform", low, high}`,
    `{kind = "lognormal", mean, cv, low, high}`, `{kind = "empirical", file = "lengths.csv"}` or
    `{kind = "empirical", values, weights}`."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table with a 'kind' key")
    kind = require_choice(f"{where}.kind", table.get("kind"), LENGTHS)
    cls = LENGTHS[kind]
    reject_unknown_keys(where, {k: v for k, v in table.items() if k != "kind"}, cls.keys)
    try:
        return cls.from_table(table, base_dir)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def length_flag_forms() -> list[str]:
    """The command-line forms of every registered distribution ('N', 'uniform:LOW,HIGH', ...)."""
    return [cls.flag_syntax for cls in LENGTHS.values()]


def parse_length_flag(where: str, text):
    """CLI form: 'N' (fixed) or PREFIX:ARGS of a registered distribution ('uniform:64,512',
    'lognormal:MEAN,CV[,LOW,HIGH]', 'file:PATH'); a distribution given from Python passes through."""
    if hasattr(text, "sample"):
        return text
    text = str(text).strip()
    try:
        if ":" not in text:
            return Fixed.from_flag(text)
        prefix, args = text.split(":", 1)
        for cls in LENGTHS.values():
            if cls.flag_prefix == prefix:
                return cls.from_flag(args)
    except ConfigError as exc:     # a subclass of ValueError: must come first
        raise ConfigError(f"{where}: {exc}") from None
    except ValueError:
        pass
    forms = length_flag_forms()
    raise ConfigError(f"{where}: {excerpt(text, 40)} is not {', '.join(forms[:-1])} or {forms[-1]}")


def _plain_numbers(name: str, items, **limits) -> tuple:
    """`items` (a list, tuple or 1-D array) as a tuple of plain numbers, each within `limits` (those of
    `require_number`), or a ConfigError naming the first bad one: `values[2]: 1e+300 is out of range ...`.
    A boolean is refused, not read as 1."""
    if isinstance(items, np.ndarray) and items.ndim == 1:
        items = items.tolist()
    if not isinstance(items, (list, tuple)):
        shown = excerpt(items) if isinstance(items, str) else repr(items)[:24]
        raise ConfigError(f"{name}: expected an array of numbers, got {shown}")
    items = tuple(item.item() if isinstance(item, np.generic) else item for item in items)
    for position, item in enumerate(items):
        require_number(f"{name}[{position}]", item, **limits)
    return items


def _whole(name: str, text: str) -> int:
    """A token count from the command line: a whole number in range (1.5 is refused, not truncated)."""
    value = float(text)
    return require_number(name, int(value) if value.is_integer() else value, low=1, high=MAX_TOKENS, integer=True)
