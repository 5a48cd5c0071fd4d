"""What a GPU is (datasheet `GPUSpec`) and how much of it software reaches (`Efficiency`).

Specs come from `simulator/catalog/gpus.toml` plus user files; efficiency profiles from
`simulator/catalog/profile.toml` (the fit of the shipped measurements) or a `profile` file.
"""
from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass, field, fields, replace
from importlib import resources

from simulator.catalog_io import merged_catalog, read_toml, packaged_toml, require_text
from simulator.errors import ConfigError, excerpt, reject_unknown_keys, require_choice, require_number
from simulator.intervals import check_interval, check_log_sigma

DTYPES = ("bf16", "fp8", "fp6", "fp4")
NARROW_DTYPES = ("fp6", "fp4")
BITS = {"bf16": 16, "fp16": 16, "fp8": 8, "fp6": 6, "fp4": 4}
SCALEUP_KINDS = ("nvswitch", "mesh", "nvl72")
# A GPU's text fields (`name` is its catalog key; `aliases` are checked as a list).
GPU_TEXT_FIELDS = ("display_name", "vendor", "family", "base_family", "source")


# The slowest NIC line rate taken, Gb/s: 100 Mb/s, below any data-centre NIC. Slower, a KV hand-off's
# simulated span (and the periodic checks over it) grows without bound: --scaleout-gbps 1e-6 never returned.
MIN_NIC_GBPS = 0.1


def check_nic_gbps(where: str, value) -> float:
    """A NIC line rate in Gb/s (a GPU's own, or a topology's scale-out override): MIN_NIC_GBPS to 1e6."""
    return require_number(where, value, low=MIN_NIC_GBPS, high=1e6)


@dataclass(frozen=True)
class GPUSpec:
    """Datasheet figures of one GPU. Peak TFLOP/s are dense; scale-up is the bidirectional per-GPU figure."""

    name: str
    display_name: str
    vendor: str
    family: str
    hbm_gb: float
    hbm_tb_per_s: float
    peak_tflops: dict = field(hash=False)
    scaleup: str
    scaleup_gb_per_s: float
    gpus_per_server: int
    nic_gbps: float
    power_w: float
    usd_per_gpu_hour: tuple[float, float]
    scaleup_links: int = 0
    source: str = ""
    aliases: tuple = ()
    # The rest of the node's rated power per GPU (host CPUs, memory, NICs, switches, fans, power-supply
    # losses): what a provisioned-power figure adds to the TDP. None where no rated figure is catalogued.
    node_other_power_w: float | None = None
    # The generation a refreshed chip is built on (`base_family`: B300 on Blackwell): it shares that
    # generation's HBM and memory controller and its kernels' launch path, so calibration's memory
    # efficiency and step overhead; empty: the chip family.
    base_family: str = ""

    def __post_init__(self):
        where = f"gpu {self.name}"
        for name in GPU_TEXT_FIELDS:
            require_text(f"{where}: {name}", getattr(self, name))
        if not self.base_family:
            object.__setattr__(self, "base_family", self.family)
        for name in ("hbm_gb", "hbm_tb_per_s", "scaleup_gb_per_s", "power_w"):
            require_number(f"{where}: {name}", getattr(self, name), low=0, low_inclusive=False, high=1e7)
        check_nic_gbps(f"{where}: nic_gbps", self.nic_gbps)
        require_number(f"{where}: gpus_per_server", self.gpus_per_server, low=1, high=4096, integer=True)
        require_number(f"{where}: scaleup_links", self.scaleup_links, low=0, high=64, integer=True)
        if self.node_other_power_w is not None:
            require_number(f"{where}: node_other_power_w", self.node_other_power_w, low=0, high=1e7)
        require_choice(f"{where}: scaleup", self.scaleup, SCALEUP_KINDS)
        if self.scaleup == "mesh" and self.scaleup_links != self.gpus_per_server - 1:
            raise ConfigError(f"{where}: scaleup_links {self.scaleup_links} must be gpus_per_server - 1 "
                              f"= {self.gpus_per_server - 1} for a full mesh")
        if not self.peak_tflops:
            raise ConfigError(f"{where}: peak_tflops needs at least bf16")
        for dtype, tflops in self.peak_tflops.items():
            require_choice(f"{where}: peak_tflops key", dtype, DTYPES)
            require_number(f"{where}: peak_tflops.{dtype}", tflops, low=0, low_inclusive=False, high=1e7)
        if "bf16" not in self.peak_tflops:
            raise ConfigError(f"{where}: peak_tflops needs a bf16 entry")
        check_peak_order(where, self.peak_tflops)
        low, high = self.usd_per_gpu_hour
        require_number(f"{where}: usd_per_gpu_hour low", low, low=0, high=1e4)
        require_number(f"{where}: usd_per_gpu_hour high", high, low=low, high=1e4)

    def peak_flops(self, dtype: str) -> float:
        """Dense peak FLOP/s for math in `dtype`; a GPU without that rate is an error, not a fallback."""
        if dtype in ("bf16", "fp16"):
            return self.peak_tflops["bf16"] * 1e12
        if dtype not in self.peak_tflops:
            have = ", ".join(sorted(self.peak_tflops))
            raise ConfigError(f"gpu {self.name} has no {dtype} tensor rate (it has {have}); choose another precision")
        return self.peak_tflops[dtype] * 1e12

    @property
    def hbm_bytes_per_s(self) -> float:
        return self.hbm_tb_per_s * 1e12

    @property
    def usd_per_gpu_hour_mid(self) -> float:
        return sum(self.usd_per_gpu_hour) / 2


def check_peak_order(where: str, peak_tflops: dict) -> None:
    """A 4- or 6-bit peak is at least the next wider format's: no GPU's tensor cores slow down when the
    operands narrow (a lower figure is a typo, or a sparse or per-something number beside dense ones)."""
    widest_first = sorted(peak_tflops, key=BITS.__getitem__, reverse=True)
    for wider, narrower in zip(widest_first, widest_first[1:]):
        if narrower in NARROW_DTYPES and peak_tflops[narrower] < peak_tflops[wider]:
            raise ConfigError(f"{where}: peak_tflops.{narrower} {peak_tflops[narrower]!r} is below peak_tflops.{wider} "
                              f"{peak_tflops[wider]!r}; a narrower format's peak must be at least a wider one's")


_GPU_KEYS = {f.name for f in fields(GPUSpec)} - {"name"}


def gpu_from_table(name: str, table: dict) -> GPUSpec:
    """Build a GPUSpec from one catalog table, naming the file and key on any error."""
    where = f"{table.get('_file', 'gpus.toml')}: [{name}]"
    values = {k: v for k, v in table.items() if k != "_file"}
    reject_unknown_keys(where, values, _GPU_KEYS)
    required = [f.name for f in fields(GPUSpec) if f.name not in ("name", "scaleup_links", "source", "aliases",
                                                                  "node_other_power_w", "base_family")]
    missing = [k for k in required if k not in table]
    if missing:
        raise ConfigError(f"{where}: missing key {missing[0]!r}")
    prices = values["usd_per_gpu_hour"]
    if not (isinstance(prices, list) and len(prices) == 2):
        raise ConfigError(f"{where}: usd_per_gpu_hour must be [low, high], got {prices!r}")
    if not isinstance(values["peak_tflops"], dict):
        raise ConfigError(f"{where}: peak_tflops must be a table like {{ bf16 = 989 }}")
    values["usd_per_gpu_hour"] = tuple(prices)
    aliases = values.get("aliases", [])
    if not (isinstance(aliases, list) and all(isinstance(a, str) and a.strip() for a in aliases)):
        raise ConfigError(f"{where}: aliases must be a list of names, got {aliases!r}")
    values["aliases"] = tuple(aliases)
    values["peak_tflops"] = dict(values["peak_tflops"])
    try:
        return GPUSpec(name=name, **values)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def load_gpus(user_files=()) -> dict[str, GPUSpec]:
    """All GPUs: the packaged catalog plus user files (which add or override entries)."""
    tables = merged_catalog("simulator.catalog", "gpus.toml", user_files)
    gpus = {name: gpu_from_table(name, table) for name, table in tables.items()}
    where = {name: f"{table.get('_file', 'gpus.toml')}: [{name}]" for name, table in tables.items()}
    check_aliases(where, gpus)
    check_base_families(where, gpus)
    return gpus


def check_aliases(where: dict, gpus: dict[str, GPUSpec]) -> None:
    """Every name and alias (compared by `alias_key`) means one GPU: an alias that is another GPU's name or
    alias would send measured results, or a lookup, to whichever entry came last."""
    owner = {alias_key(name): name for name in gpus}
    for gpu in gpus.values():
        for alias in gpu.aliases:
            other = owner.setdefault(alias_key(alias), gpu.name)
            if other != gpu.name:
                what = "the name of" if alias_key(alias) == alias_key(other) else "also an alias of"
                raise ConfigError(f"{where[gpu.name]}: alias {alias!r} is {what} GPU {other}; "
                                  f"an alias must name one GPU")


def check_base_families(where: dict, gpus: dict[str, GPUSpec]) -> None:
    """A base_family is a chip family of the catalog: profiles and calibration key values by it, so an
    unknown one would silently take none of its generation's values."""
    families = {gpu.family for gpu in gpus.values()}
    for gpu in gpus.values():
        if gpu.base_family not in families:
            raise ConfigError(f"{where[gpu.name]}: base_family {gpu.base_family!r} is no catalog GPU's family; "
                              f"known: {', '.join(sorted(families))}")


def alias_key(name: str) -> str:
    """How names are compared: case and runs of spaces do not matter."""
    return " ".join(str(name).lower().split())


def gpu_by_alias(gpus: dict[str, GPUSpec]) -> dict[str, str]:
    """Every catalog name and alias (normalised by `alias_key`) -> the catalog name."""
    table = {}
    for gpu in gpus.values():
        for alias in (gpu.name, *gpu.aliases):
            table[alias_key(alias)] = gpu.name
    return table


def get_gpu(name: str, user_files=(), gpus: dict | None = None) -> GPUSpec:
    """A catalog GPU by name; `gpus` is the catalog when the caller already loaded it (`load_gpus`)."""
    gpus = gpus if gpus is not None else load_gpus(user_files)
    key = name.lower()
    if key not in gpus:
        raise ConfigError(f"`gpu`: unknown GPU {name!r}; known: {', '.join(sorted(gpus))}")
    return gpus[key]


# Fixed cost of one collective call: kernel launch and synchronisation. Measured small all-reduces take
# ~6 us with CUDA graphs (NCCL, 2 x H100) and 6-8 us with graphs on 8 x MI300X (RCCL), more without;
# see topologies/catalog/topologies.toml for sources. The topology builders price each call with it;
# `Efficiency.collective_latency_s` (fitted per vendor and stack) replaces it.
LAUNCH_LATENCY_S = 5e-6
# Fixed cost of one expert-parallel dispatch or combine: an all-to-all that every rank of the group must
# enter (each waits for the slowest), plus the token permutation around it. Published intra-node
# dispatch/combine kernels (DeepEP, NCCL all-to-all) take tens of microseconds for decode-sized batches,
# several times a small all-reduce; `Efficiency.all_to_all_latency_s` (fitted) replaces it. The fit puts it
# at a few hundred microseconds (simulator/catalog/profile.toml), because it is the only field
# that adds a fixed time to expert-parallel steps alone: the DeepSeek-R1 Server rows on 8 B200 (v5.1) imply,
# by Little's law (completed samples/s x mean latency = sequences in flight) and LoadGen's mean TPOT, a
# decode step of ~49 ms + 0.014 ms per sequence in flight
# (NVIDIA: 4.96/s x 248.9 s = 1,235 sequences at 66.2 ms; Dell: 3.78/s x 224.5 s = 849 at 60.9 ms), where
# the step model at this prior gives ~20 ms + 0.012 ms per sequence (every expert's weights ~12 ms, step
# overhead ~4 ms, 2 x 58 MoE-layer all-to-alls x 30 us ~3.5 ms). At 350 us those calls take 41 ms: the
# field stands for a fixed cost of expert-parallel steps whose cause the rows do not show.
ALL_TO_ALL_LATENCY_S = 3e-5

# Efficiency fields that are a share of a peak or of uniform routing: above 0, at most 1.
PEAK_FRACTIONS = ("compute_efficiency", "narrow_compute_efficiency", "memory_efficiency", "attention_efficiency",
                  "moe_efficiency", "expert_balance", "collective_efficiency")
# The range of each efficiency field: from 0 (excluded for a peak fraction) to this.
FIELD_UPPER_BOUND = {**dict.fromkeys(PEAK_FRACTIONS, 1.0), "gemm_half_tokens": 1e6, "gemm_ridge_excess": 1.0,
                     "step_overhead_s": 10.0, "sequence_overhead_s": 1.0, "collective_latency_s": 0.01,
                     "all_to_all_latency_s": 0.01}


@dataclass(frozen=True)
class Efficiency:
    """How much of the datasheet software reaches; the parameters calibration fits. Defaults are the
    uncalibrated prior, each set by what is known of real kernels (see simulator/catalog/profile.toml
    for the fitted values and ../shared/reference/gpus.md for the measurements quoted).

    compute_efficiency: fraction of dense peak a large 8- or 16-bit GEMM reaches (an 8192^3 bf16 GEMM
        reaches ~81% of an H100's peak).
    narrow_compute_efficiency: the same for 4- and 6-bit GEMMs, which reach a smaller share of their
        (doubled) peak: scaling factors, unpacking and operand delivery do not speed up with the tensor rate.
    memory_efficiency: fraction of HBM bandwidth a streaming read reaches (device copies reach ~90%).
    gemm_half_tokens: GEMM rows (tokens) at which GEMM efficiency is half its large-GEMM value; small
        batches (decode with few sequences) reach far less of peak.
    gemm_ridge_excess: how much longer than its roofline a GEMM takes where its math and its weight read
        take equally long (the ridge point): 0 if a kernel overlapped them perfectly (the roofline's
        max), 1 if not at all (their sum). Pipelined kernels stall on loads near the ridge; decode at
        the batches an interactive latency limit allows runs there (`costmodel.overlapped_s`). Attention
        kernels, which stream KV tiles while they compute, take the same excess where their math and
        their KV read take equally long.
    attention_efficiency: fraction of peak the attention math reaches (flash-attention kernels).
    moe_efficiency: fraction of the dense-GEMM efficiency a grouped expert GEMM reaches.
    expert_balance: with expert parallelism the most loaded rank sets the pace; uniform routing gives a
        binomial spread, real routers favour some experts more: the busiest rank's expert work is that
        binomial maximum / expert_balance (1 = uniform routing).
    step_overhead_s: fixed time per engine step (scheduler, kernel launches, sampling).
    sequence_overhead_s: time per sequence in a step that does not run on tensor cores nor grow with the
        model: the serving stack's bookkeeping, sampling and detokenising for each sequence (a C++
        runtime spends ~1-2 us, a Python scheduler ~10 us).
    collective_efficiency: fraction of link bandwidth a collective reaches (NCCL rings ~82% of NVLink).
    collective_latency_s: fixed time of one collective call (launch and synchronisation), before the
        links' hop latencies: ~5 us for a graph-captured custom all-reduce, 10-30 us for NCCL/RCCL small
        messages without one (topologies/catalog/topologies.toml cites measurements).
    all_to_all_latency_s: the same for an expert-parallel dispatch or combine (ALL_TO_ALL_LATENCY_S).
    """

    compute_efficiency: float = 0.7
    narrow_compute_efficiency: float = 0.5
    memory_efficiency: float = 0.85
    gemm_half_tokens: float = 64.0
    gemm_ridge_excess: float = 0.25
    attention_efficiency: float = 0.5
    moe_efficiency: float = 0.7
    expert_balance: float = 0.8
    step_overhead_s: float = 0.003
    sequence_overhead_s: float = 3e-6
    collective_efficiency: float = 0.8
    collective_latency_s: float = LAUNCH_LATENCY_S
    all_to_all_latency_s: float = ALL_TO_ALL_LATENCY_S

    def __post_init__(self):
        for name, high in FIELD_UPPER_BOUND.items():
            require_number(f"efficiency.{name}", getattr(self, name), low=0,
                           low_inclusive=name not in PEAK_FRACTIONS, high=high)

    def gemm_efficiency(self, dtype: str) -> float:
        """Large-GEMM fraction of the dense peak for math in `dtype`."""
        return self.narrow_compute_efficiency if dtype in NARROW_DTYPES else self.compute_efficiency


EFFICIENCY_FIELDS = tuple(f.name for f in fields(Efficiency))


assert set(FIELD_UPPER_BOUND) == set(EFFICIENCY_FIELDS)
# Highest value calibration or a profile may give each field: its upper bound, except that a kernel's
# share of a datasheet peak (compute, memory, attention) stays a hair below the whole peak.
FIELD_CEILING = {**FIELD_UPPER_BOUND, "compute_efficiency": 0.99, "narrow_compute_efficiency": 0.99,
                 "memory_efficiency": 0.99, "attention_efficiency": 0.99}
# A composed value (a profile's value times its factors, or calibration's prior times its offsets) bends
# under its ceiling over this share of it either side (`under_ceiling`). A hard cap had a kink where the
# fit ends: with NVIDIA's collective efficiency held at 1.0 the solver's linear model promised a lower cost
# up the capped direction, no step delivered it, and the trust region shrank until `xtol` stopped it, at a
# point the last rounding of any row could move (a 0.08% change on 9 of 362 rows moved held-out 90th
# percentiles by up to 20 points). Smoothed (this change alone, before calibrate's smaller difference steps
# and attention's smooth roofline), the fitted log-RMS fell from 0.0751 to 0.0742 and the largest gradient
# left at the end from 18.5 to 2.3.
CEILING_KNEE = 0.1
PROFILE_SECTIONS = ("default", "vendor", "family", "base_family", "gpu", "stack", "release", "fit")


def under_ceiling(name: str, value: float) -> float:
    """`value` of field `name` held under the field's ceiling c smoothly: unchanged up to (1 - k) c, c from
    (1 + k) c on, and between them the quadratic that joins the two with a continuous slope (k is
    CEILING_KNEE): c x (u - (u - 1 + k)^2 / 4k) for u = value / c. At the ceiling itself a value gives
    (1 - k/4) c: a profile's value of 1.0 for collective efficiency or expert balance runs at 0.975, and
    reaches 1.0 with a factor of 1.1 beside it (`collective_efficiency_factor = 1.1`)."""
    ceiling = FIELD_CEILING[name]
    u = value / ceiling
    if u <= 1 - CEILING_KNEE:
        return value
    if u >= 1 + CEILING_KNEE:
        return ceiling
    return ceiling * (u - (u - 1 + CEILING_KNEE) ** 2 / (4 * CEILING_KNEE))


def composed_efficiency(tables) -> Efficiency:
    """The built-in defaults with profile tables applied in order, each a (where, table) pair: a field's
    value sets it, a `FIELD_factor` multiplies it (a software stack that reaches 0.9x of what the GPU's
    own figures say). The composed values are then held under their ceilings (`under_ceiling`)."""
    defaults = Efficiency()
    raw = {name: getattr(defaults, name) for name in EFFICIENCY_FIELDS}
    for where, table in tables:
        reject_unknown_keys(where, table, EFFICIENCY_FIELDS + tuple(f"{name}_factor" for name in EFFICIENCY_FIELDS))
        values = {key: value for key, value in table.items() if not key.endswith("_factor")}
        try:
            replace(Efficiency(), **values)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        raw.update(values)
        for key, value in table.items():
            if key.endswith("_factor"):
                require_number(f"{where}: {key}", value, low=0.01, high=100)
                raw[key[: -len("_factor")]] *= value
    return Efficiency(**{name: under_ceiling(name, value) for name, value in raw.items()})


SHIPPED_PROFILE = ("simulator.catalog", "profile.toml")      # (package, file name)


def load_profile(path=None) -> dict:
    """The efficiency profile: `[default]`, then factors per `[vendor.X]`, `[family.X]`, `[gpu.X]` and
    `[stack.X]`, and the calibration's `[fit]` (see `efficiency_for`). Each version of a file (its
    modification time and size) is parsed and checked once: reading it took 2 ms of a `serving_config`'s
    5, which sweeps and calibration build thousands of times. The caller gets its own copy."""
    try:
        status = os.stat(path or resources.files(SHIPPED_PROFILE[0]) / SHIPPED_PROFILE[1])
        version = (status.st_mtime_ns, status.st_size)
    except (OSError, TypeError):      # no such file (read_toml says so), or a zipped package's (never changes)
        if path:
            return _checked_profile.__wrapped__(str(path), None)
        version = None
    return copy.deepcopy(_checked_profile(str(path) if path else None, version))


@functools.lru_cache(maxsize=8)
def _checked_profile(path: str | None, version) -> dict:
    """A profile file parsed and checked (`version` only keys the cache)."""
    data = read_toml(path) if path else packaged_toml(*SHIPPED_PROFILE)
    check_profile(path or "profile.toml", data)
    return data


# What a profile's [fit] may hold (calibrate.profile_toml writes it), and the kind of each value.
FIT_KEYS = {"interval": "interval", "rows": "number", "residual_log_rms": "number", "model_log_sigma": "log-sigma",
            "unseen_model_log_sigma": "log-sigma", "models": "list of names", "reference_stack": "table of names",
            "default_release": "table of names", "log_sigma": "table of numbers", "runs": "list of names",
            "unseen_run_log_sigma": "table of numbers", "datasheet": "table of names"}


def check_profile(where: str, data: dict) -> None:
    """Every section of a profile has the shape and values its readers expect, whether or not a run
    reads it: a one-line ConfigError naming the entry, never a traceback later."""
    reject_unknown_keys(where, data, PROFILE_SECTIONS)
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{section}] must be a table, not {table!r}")
        if section == "default":
            composed_efficiency([(f"{where}: [default]", table)])
        elif section != "fit":
            for key, factors in table.items():
                if not isinstance(factors, dict):
                    raise ConfigError(f"{where}: [{section}.{key}] must be a table of factors, not {factors!r}")
                composed_efficiency([(f"{where}: [{section}.{key}]", factors)])
    fit = data.get("fit", {})
    reject_unknown_keys(f"{where}: [fit]", fit, tuple(FIT_KEYS))
    for key, value in fit.items():
        kind, name = FIT_KEYS[key], f"{where}: [fit] {key}"
        if kind == "interval":
            check_interval(name, value)
        elif kind == "log-sigma":
            check_log_sigma(name, value)
        elif kind == "number":
            require_number(name, value, low=0, high=1e9)
        elif kind == "list of names":
            if not isinstance(value, list):
                raise ConfigError(f"{name}: must be a list of names, not {excerpt(value)}")
            bad = next((k for k, v in enumerate(value, start=1) if not isinstance(v, str)), None)
            if bad is not None:
                raise ConfigError(f"{name}: entry {bad}, {excerpt(value[bad - 1])}, is not a name (a string)")
        elif not isinstance(value, dict):
            raise ConfigError(f"{name}: must be a {kind}, not {excerpt(value)}")
        elif kind == "table of names":
            bad = next((k for k, v in value.items() if not isinstance(v, str)), None)
            if bad is not None:
                raise ConfigError(f"{name}: must be a table of names; {excerpt(bad)} is {excerpt(value[bad])}")
        else:
            for entry, sigma in value.items():
                check_log_sigma(f"{where}: [fit.{key}] {entry}", sigma)


def check_profile_names(where: str, profile: dict, gpus: dict) -> None:
    """A user's profile names only vendors, families and GPUs the GPU catalog has, and only releases it
    has sections for: a section or [fit] entry under a misspelt name ([gpu."mi355"], a default release
    "99.99") would otherwise be ignored, or move predictions, without a word."""
    known = {"vendor": {g.vendor for g in gpus.values()}, "family": {g.family for g in gpus.values()},
             "base_family": {g.base_family for g in gpus.values()},
             "gpu": set(gpus) | {f"family-{g.family}" for g in gpus.values()}}
    for section, names in known.items():
        for name in profile.get(section, {}):
            if name not in names:
                raise ConfigError(f"{where}: [{section}.{name}] names no {section.replace('_', ' ')} of the GPU "
                                  f"catalog; known: {', '.join(sorted(names))}")
    # [fit] entries that name other things: a misspelt one would change predictions without a word
    fit = profile.get("fit", {})
    for table in ("log_sigma", "datasheet"):
        for name in fit.get(table, {}):
            if name not in gpus:
                raise ConfigError(f"{where}: [fit.{table}] {excerpt(name)} names no GPU of the GPU catalog; "
                                  f"known: {', '.join(sorted(gpus))}")
    for vendor in fit.get("reference_stack", {}):
        if vendor not in known["vendor"]:
            raise ConfigError(f"{where}: [fit.reference_stack] {excerpt(vendor)} names no vendor of the GPU "
                              f"catalog; known: {', '.join(sorted(known['vendor']))}")
    releases = profile.get("release", {})
    for stack, version in fit.get("default_release", {}).items():
        if f"{stack} {version}" not in releases:
            fitted = sorted(r.rsplit(" ", 1)[-1] for r in releases if r.rsplit(" ", 1)[0] == stack)
            raise ConfigError(f"{where}: [fit.default_release] {excerpt(stack)} = {excerpt(version)} has no "
                              f"[release] section; its fitted releases: {', '.join(fitted) or 'none'}")


def profile_stacks(profile: dict) -> list[str]:
    return sorted(profile.get("stack", {}))


def efficiency_for(gpu: GPUSpec, profile: dict | None = None, stack: str | None = None,
                   profile_path=None) -> Efficiency:
    """Efficiency for `gpu` running `stack`: the profile's default, then its vendor's, its chip family's,
    its base family's and its own factors, then the software stack's (`stack` as written in the profile,
    or qualified by the GPU's vendor, "vllm" -> "nvidia/vllm"). Without a stack, the vendor's reference stack (the one
    its published results mostly use, whose factors the vendor and GPU sections already hold). The
    stack's release is the profile's default one (`[fit.default_release]`: the newest it was fitted on)."""
    profile = profile if profile is not None else load_profile(profile_path)
    where = str(profile_path or "profile.toml")
    tables = [(f"{where}: [default]", profile.get("default", {}))]
    sections = (("vendor", gpu.vendor), ("family", gpu.family), ("base_family", gpu.base_family),
                ("gpu", f"family-{gpu.family}"), ("gpu", gpu.name))
    for section, key in sections:
        table = profile.get(section, {})
        if key in table:
            tables.append((f"{where}: [{section}.{key}]", table[key]))
    fit = profile.get("fit", {})
    reference = fit.get("reference_stack", {}).get(gpu.vendor)
    if stack is not None:
        stacks = profile.get("stack", {})
        key = stack if stack in stacks else f"{gpu.vendor}/{stack}"
        if key in stacks:
            tables.append((f"{where}: [stack.{key}]", stacks[key]))
        elif stack != reference:
            known = sorted(set(stacks) | set(fit.get("reference_stack", {}).values()))
            raise ConfigError(f"`stack`: {stack!r} is not in the profile for {gpu.vendor} GPUs; known: "
                              f"{', '.join(known) or 'none'}")
    name, version = _applied_release(gpu, profile, stack)
    releases = profile.get("release", {})
    if version and f"{gpu.vendor}/{name} {version}" in releases:
        key = f"{gpu.vendor}/{name} {version}"
        tables.append((f"{where}: [release.{key}]", releases[key]))
    return composed_efficiency(tables)


def _applied_release(gpu: GPUSpec, profile: dict, stack: str | None) -> tuple[str, str | None]:
    """The stack `efficiency_for` applies (the named one, else the vendor's reference) and its release."""
    fit = profile.get("fit", {})
    name = (stack or fit.get("reference_stack", {}).get(gpu.vendor) or "").split("/")[-1]
    return name, fit.get("default_release", {}).get(f"{gpu.vendor}/{name}")


def applied_stack(gpu: GPUSpec, profile: dict, stack: str | None) -> str | None:
    """What a prediction's efficiencies stand for, as output shows it: "tensorrt-llm 10.11", the vendor's
    reference stack when none is named; None when the profile names none."""
    name, version = _applied_release(gpu, profile, stack)
    return " ".join(part for part in (name, version) if part) or None
