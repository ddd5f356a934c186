"""One way for every benchmark to report a figure: a `BENCH` line a script can read,

    BENCH <name> value=<number> unit=<unit> limit=<number> ratio=<value/limit>

(for figures where lower is better, such as latencies, ratio = limit/value: above 1 is
better than the limit either way), also appended to var/bench/results.jsonl, from which
`bench/table.py` prints the table at the end of `make bench`."""

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(os.environ.get("BENCH_RESULTS", Path(__file__).resolve().parent.parent / "var" / "bench" / "results.jsonl"))


def emit(name: str, value: float, unit: str, limit: float, *, lower_is_better: bool = False, note: str = "") -> None:
    ratio = (limit / value if value else float("inf")) if lower_is_better else value / limit
    print(f"BENCH {name} value={value:.6g} unit={unit} limit={limit:.6g} ratio={ratio:.3f}", flush=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps({"name": name, "value": value, "unit": unit, "limit": limit, "ratio": ratio,
                              "lower_is_better": lower_is_better, "note": note, "at": time.time(),
                              "machine": f"{platform.machine()}, {os.cpu_count()} cores"}) + "\n")
