"""Why a request did not finish: the keys of `requests_dropped_by_reason`. Each text is fixed for a run,
so counting requests by text counts them by cause."""

NO_ENGINE = "no engine left alive after failures"
NO_PREFILL_ENGINE = "no prefill engine left alive after failures"
NO_DECODE_ENGINE = "no decode engine left alive after failures"
HANDOFF_UNREACHABLE = "KV hand-off found no route to a live decode engine after a link failure"
CLUSTER_DOWN = (NO_ENGINE, NO_PREFILL_ENGINE, NO_DECODE_ENGINE)
UNFINISHED = "unfinished when the simulation stopped at {:.3f} s"     # `max_time_s`: expected, no warning
