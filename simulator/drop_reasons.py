"""Why a request did not finish: the keys of `requests_dropped_by_reason`. Each text is fixed for a run,
so counting requests by text counts them by cause."""

NO_ENGINE = "no engine left alive after failures"
NO_PREFILL_ENGINE = "no prefill engine left alive after failures"
NO_DECODE_ENGINE = "no decode engine left alive after failures"
HANDOFF_UNREACHABLE = "KV hand-off found no route to a live decode engine after a link failure"
CLUSTER_DOWN = (NO_ENGINE, NO_PREFILL_ENGINE, NO_DECODE_ENGINE)
UNFINISHED = "unfinished when the simulation stopped at {:.3f} s"     # what stopped it, the run's warning says


def is_unfinished(reason: str) -> bool:
    """Whether a drop reason is UNFINISHED, at whatever stop time."""
    return reason.startswith(UNFINISHED.split(" at ")[0])


def counted(by_reason: dict) -> str:
    """Drop reasons with their counts, as warnings list them: "reason (count); ..."."""
    return "; ".join(f"{reason} ({count})" for reason, count in by_reason.items())
