"""Run every benchmark and write bench/results.json.

Each benchmark module exposes `run() -> list[Entry]`, an entry being
{"name", "ours", "baseline", "unit", "ratio", "target"} where ratio = ours / baseline and target
is the comparison the ratio must meet ("<= 1.0", ">= 0.9"). `python -m bench registry ingest`
runs a subset."""

from __future__ import annotations

import importlib
import json
import operator
import sys
import time
from pathlib import Path
from typing import Any

MODULES = ["lambda_bench", "registry_bench", "ingest_bench", "train_bench"]
RESULTS = Path(__file__).with_name("results.json")
COMPARE = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


def meets(entry: dict[str, Any]) -> bool:
    symbol, _, value = entry["target"].partition(" ")
    return bool(COMPARE[symbol](entry["ratio"], float(value)))


def main(argv: list[str]) -> int:
    wanted = [m for m in MODULES if not argv or any(a in m for a in argv)]
    entries: list[dict[str, Any]] = []
    for name in wanted:
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        module = importlib.import_module(f"bench.{name}")
        entries += module.run()
        print(f"   ({time.perf_counter() - started:.0f}s)", flush=True)
    previous = {e["name"]: e for e in json.loads(RESULTS.read_text())} if RESULTS.exists() else {}
    merged = {**previous, **{e["name"]: e for e in entries}}
    RESULTS.write_text(json.dumps(list(merged.values()), indent=2) + "\n")
    print(f"\n{'benchmark':<58} {'ours':>12} {'baseline':>12} {'ratio':>7}  target")
    failures = 0
    for entry in entries:
        ok = meets(entry)
        failures += not ok
        print(
            f"{entry['name']:<58} {entry['ours']:>12.4g} {entry['baseline']:>12.4g} {entry['ratio']:>7.3f}  "
            f"{entry['target']} {'ok' if ok else 'MISSED'}  ({entry['unit']})"
        )
    print(f"\nwrote {RESULTS}; {failures} target(s) missed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
