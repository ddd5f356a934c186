"""The table at the end of `make bench`: every BENCH figure of this run (var/bench/results.jsonl)."""

import json

from report import RESULTS


def main() -> None:
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines()] if RESULTS.exists() else []
    if not rows:
        print("no BENCH figures recorded")
        return
    print(f"\n{'name':28} {'value':>12} {'unit':10} {'limit':>12} {'ratio':>7}  note")
    for row in rows:
        print(f"{row['name']:28} {row['value']:12.4g} {row['unit']:10} {row['limit']:12.4g} {row['ratio']:7.3f}  "
              f"{row['note']}")
    print(f"({rows[0]['machine']}; ratio = value/limit, or limit/value where lower is better)")


if __name__ == "__main__":
    main()
