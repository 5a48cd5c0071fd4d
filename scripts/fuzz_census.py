"""Count what the structure-aware fuzz generators (tests/test_fuzz_structured.py) find, without stopping at
the first defect: every generator draws N cases from a fixed seed and the oracle classifies each one
(a case running out of time or memory counts as a hang).

    python scripts/fuzz_census.py 60            # 60 cases per generator
    python scripts/fuzz_census.py 60 --show 3   # and the first 3 cases of each defect kind
    python scripts/fuzz_census.py 60 --save cases.json   # keep the cases, to classify them again with
    python scripts/fuzz_census.py --load cases.json      # another version of the code (before / after)
"""
from __future__ import annotations

import argparse
import base64
import collections
import json
import random
import resource
import signal
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import NonInteractiveExampleWarning  # noqa: E402

from tests.fuzzing import Case, classify  # noqa: E402
from tests.test_fuzz_structured import GENERATORS  # noqa: E402


def draw_cases(strategy, count: int, seed: int) -> list:
    cases = []

    @settings(max_examples=count, database=None, deadline=None, suppress_health_check=list(HealthCheck),
              derandomize=False)
    @given(strategy)
    def collect(case):
        cases.append(case)
    random.seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        collect._hypothesis_internal_use_seed = seed
        collect()
    return cases[:count]


def dump_case(case: Case) -> dict:
    files = {n: ({"base64": base64.b64encode(c).decode()} if isinstance(c, bytes) else c) for n, c in case.files.items()}
    return {"argv": [str(a) for a in case.argv], "files": files, "hostile": case.hostile, "names": list(case.names),
            "arrivals": list(case.arrivals)}


def load_case(data: dict) -> Case:
    files = {n: (base64.b64decode(c["base64"]) if isinstance(c, dict) else c) for n, c in data["files"].items()}
    return Case(data["argv"], files, data["hostile"], tuple(data["names"]), tuple(data["arrivals"]))


class Hang(BaseException):
    """A case ran longer than the per-case limit."""


def _alarm(signum, frame):
    raise Hang()


def classify_bounded(case, seconds: int):
    """classify, with a time limit per case (a hostile value can make a loop run for ever)."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        verdict, detail = classify(case)
    finally:
        signal.alarm(0)
    if verdict == "traceback" and ("Hang" in detail or "MemoryError" in detail):
        return "hang", detail
    return verdict, detail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int, nargs="?", default=60)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--show", type=int, default=0)
    parser.add_argument("--seconds", type=int, default=60, help="time limit per case (then: hang)")
    parser.add_argument("--memory-gb", type=float, default=8.0, help="address-space limit (then: hang)")
    parser.add_argument("--save", help="write the drawn cases to this JSON file")
    parser.add_argument("--load", help="classify the cases of this JSON file instead of drawing")
    args = parser.parse_args()
    limit = int(args.memory_gb * 2 ** 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    totals = collections.Counter()
    shown = collections.Counter()
    if args.load:
        drawn = {name: [load_case(c) for c in cases] for name, cases in json.loads(Path(args.load).read_text()).items()}
    else:
        drawn = {name: draw_cases(strategy, args.count, args.seed) for name, strategy in GENERATORS.items()}
    if args.save:
        Path(args.save).write_text(json.dumps({name: [dump_case(c) for c in cases] for name, cases in drawn.items()}))
    for name, cases in drawn.items():
        verdicts = collections.Counter()
        for case in cases:
            verdict, detail = classify_bounded(case, args.seconds)
            verdicts[verdict] += 1
            if verdict not in ("ok", "refused") and shown[(name, verdict)] < args.show:
                shown[(name, verdict)] += 1
                print(f"  [{name}] {verdict}: {detail}\n    {case.describe()[:400]}")
        totals.update(verdicts)
        print(f"{name:<20} " + ", ".join(f"{k} {v}" for k, v in sorted(verdicts.items())), flush=True)
    print("total                " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))


if __name__ == "__main__":
    main()
