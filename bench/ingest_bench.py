"""Ingest benchmark (issue 4, acceptance 3): ingesting a generated CSV of at least 200 MB against a bare
`pandas.read_csv` of the same file, in the same run.

Each measurement runs in a fresh child process (so that each has its own peak RSS and no warm cache
of the other's allocations). Every round runs each candidate once, back to back, alternating which
goes first. The figure checked against the target is the median of the per-round ratios
ingest/read_csv: each ratio pairs two runs made seconds apart, so the machine's drift (this 2-core
VM's speed swings by about 25% from minute to minute) cancels within a round, and the median drops
the rounds one side had disturbed. Each side's best run and the ratio of the bests and of the
medians are printed too. (Until 2026-11-23 the checked figure was the ratio of the bests; that
extreme-value statistic moved by 0.2 between runs of the same code here, because pandas' read uses
both cores and gains more than ingest from a rare quiet moment: see docs/ingest.md.)

Measured:
- baseline:  pandas.read_csv(path) (default engine and options), nothing else.
- ingest:    the ingest pipeline for a project with a contract (the steady state), reading the file
             as a stream (as it reads an S3 body): read, check against the contract, clean, hash,
             dedupe, split, profile the training split and serialise the three splits' parquet
             parts, stats.json and manifest.json (with every sha256), each handed to a storage
             callback that only counts its bytes. Storage transfer is left out: on AWS it is
             network time, in the emulator it is moto's copying.
- first:     the same for a project's first upload, which also infers the contract.
- handler:   the whole Lambda handler on moto in-process (S3 GetObject, PutObject of every curated
             object, DynamoDB idempotency, registry fake, Step Functions StartExecution), once, to
             show what the emulator adds.

Usage: python bench/ingest_bench.py [--mb 220] [--repeats 7] [--results bench/results.json] [--skip-handler]
       python bench/ingest_bench.py --mb 1000 --repeats 1 --skip-handler   (the 1 GB case, docs/ingest.md)
`python -m bench ingest` calls run().
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "bench" / ".data"
TARGET_RATIO = 2.0
FEATURES = 20


def _paths() -> None:
    for extra in (ROOT / "functions" / "ingest", ROOT / "shared", ROOT / "tests" / "integration" / "ingest"):
        if str(extra) not in sys.path:
            sys.path.insert(0, str(extra))


def generate(path: Path, megabytes: int) -> int:
    """A classification CSV of about `megabytes` MB: FEATURES numeric columns of varied scale, two
    categorical columns and an integer target. Deterministic (seeded)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240521)
    rows_per_chunk = 200_000
    rows = 0
    writer = None
    try:
        while not path.exists() or path.stat().st_size < megabytes * 1_000_000:
            n = rows_per_chunk
            columns: dict[str, Any] = {
                f"f{i}": pa.array(np.round(rng.normal(size=n) * 10 ** (i % 4), 6)) for i in range(FEATURES)
            }
            columns["colour"] = pa.array(rng.choice(["red", "white", "rose"], n))
            columns["region"] = pa.array(rng.choice([f"region-{i}" for i in range(50)], n))
            columns["target"] = pa.array(rng.integers(0, 3, n))
            table = pa.table(columns)
            if writer is None:
                writer = pacsv.CSVWriter(
                    str(path), table.schema, write_options=pacsv.WriteOptions(quoting_style="needed")
                )
            writer.write_table(table)
            rows += n
            if rows % 1_000_000 == 0:
                os.fsync(os.open(path, os.O_RDONLY))
    finally:
        if writer is not None:
            writer.close()
    return rows


def contract_json() -> str:
    _paths()
    from lepton.data.models import ColumnKind, ColumnSpec, DataContract, Task

    columns = [ColumnSpec(name=f"f{i}", kind=ColumnKind.NUMERIC) for i in range(FEATURES)]
    columns += [
        ColumnSpec(name="colour", kind=ColumnKind.CATEGORICAL),
        ColumnSpec(name="region", kind=ColumnKind.CATEGORICAL),
        ColumnSpec(name="target", kind=ColumnKind.NUMERIC),
    ]
    return DataContract(columns=columns, target="target", task=Task.CLASSIFICATION).model_dump_json()


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


WARM_UP = ROOT / "data" / "wine.csv"


def _baseline(path: str) -> dict[str, Any]:
    import pandas as pd

    pd.read_csv(WARM_UP)  # imports and one-time initialisation stay out of the measurement
    start, cpu = time.perf_counter(), _cpu()
    frame = pd.read_csv(path)
    elapsed = time.perf_counter() - start
    return {"seconds": elapsed, "cpu": _cpu() - cpu, "peak_mb": _peak_mb(), "rows": len(frame)}


def _ingest(path: str, contract: str | None) -> dict[str, Any]:
    _paths()
    from dataprep.pipeline import Prepared, prepare

    from lepton.data.models import DataContract

    declared = DataContract.model_validate_json(contract) if contract else None
    prepare(lambda: open(WARM_UP, "rb"), None, project="bench")  # noqa: SIM115 (imports, first-call set-up)
    start, cpu = time.perf_counter(), _cpu()
    result = prepare(lambda: open(path, "rb"), declared, project="bench")  # noqa: SIM115 (closed by prepare)
    assert isinstance(result, Prepared), result
    sizes: list[int] = []
    result.write(lambda obj: sizes.append(obj.size))  # storage left out: each object is only counted
    elapsed = time.perf_counter() - start
    return {
        "seconds": elapsed,
        "cpu": _cpu() - cpu,
        "peak_mb": _peak_mb(),
        "rows": result.rows.model_dump(),
        "dataset_id": result.dataset_id,
        "bytes_out": sum(sizes),
        "phases": result.timings,
    }


def _handler(path: str, contract: str) -> dict[str, Any]:
    os.environ.update(POWERTOOLS_LOG_LEVEL="WARNING", POWERTOOLS_METRICS_DISABLED="true")
    _paths()
    from ingest_harness import bench_handler_run

    return bench_handler_run(path, contract)


def _run(target: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run target(*args) in a fresh process and return what it measured."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(target, args)


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    seconds = [r["seconds"] for r in runs]
    best = min(runs, key=lambda r: r["seconds"])
    return {
        "best": best["seconds"],
        "best_cpu": best["cpu"],
        "median": statistics.median(seconds),
        "median_cpu": statistics.median(r["cpu"] for r in runs),
        "peak_mb": max(r["peak_mb"] for r in runs),
        "best_run": best,
    }


def write_results(path: Path, entries: list[dict[str, Any]]) -> None:
    """Merge our entries into bench/results.json (a list shared by every benchmark), replacing ours."""
    existing: list[dict[str, Any]] = []
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except json.JSONDecodeError:
            existing = []
    names = {e["name"] for e in entries}
    merged = [e for e in existing if e.get("name") not in names] + entries
    path.write_text(json.dumps(merged, indent=2) + "\n")


def measure(mb: int = 220, repeats: int = 7, handler: bool = True) -> list[dict[str, Any]]:
    """Run the benchmark and return its results.json entries."""
    csv_path = DATA_DIR / f"ingest-{mb}mb.csv"
    if not csv_path.exists():
        started = time.perf_counter()
        rows = generate(csv_path, mb)
        print(f"generated {csv_path} ({rows} rows) in {time.perf_counter() - started:.1f} s")
    size_mb = csv_path.stat().st_size / 1e6
    contract = contract_json()
    print(f"file: {csv_path.name}, {size_mb:.1f} MB; {repeats} rounds, alternating, one process per run")

    candidates: dict[str, tuple[Callable[..., dict[str, Any]], tuple[Any, ...]]] = {
        "read_csv": (_baseline, (str(csv_path),)),
        "ingest": (_ingest, (str(csv_path), contract)),
        "first upload": (_ingest, (str(csv_path), None)),
    }
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in candidates}
    for round_ in range(repeats):  # every round runs each candidate once, in turn going first
        names = list(candidates) if round_ % 2 == 0 else list(reversed(candidates))
        for name in names:
            target, args = candidates[name]
            runs[name].append(_run(target, *args))
        print(
            f"  round {round_ + 1}: "
            + ", ".join(f"{name} {runs[name][-1]['seconds']:.2f} s (cpu {runs[name][-1]['cpu']:.2f})" for name in runs)
            + f"; ratio {runs['ingest'][-1]['seconds'] / runs['read_csv'][-1]['seconds']:.2f}",
            flush=True,
        )
    base, ours, first = (_summary(runs[name]) for name in candidates)
    rounds = [o["seconds"] / b["seconds"] for o, b in zip(runs["ingest"], runs["read_csv"], strict=True)]
    ratio = statistics.median(rounds)
    for label, summary in (("pandas.read_csv (baseline)", base), ("ingest (contract known)", ours)):
        print(
            f"{label:<27} best {summary['best']:.2f} s (cpu {summary['best_cpu']:.2f} s), median "
            f"{summary['median']:.2f} s (cpu {summary['median_cpu']:.2f} s), peak RSS {summary['peak_mb']:.0f} MB "
            f"({summary['peak_mb'] / size_mb:.1f}x the file)"
        )
    best_run = ours["best_run"]
    print(f"  phases of its best run (s): {best_run['phases']}")
    print(f"  rows {best_run['rows']}, {best_run['bytes_out'] / 1e6:.1f} MB written, {best_run['dataset_id']}")
    print(
        f"ingest (first upload, contract inferred): best {first['best']:.2f} s, "
        f"ratio {first['best'] / base['best']:.2f}, median {first['median']:.2f} s, peak RSS {first['peak_mb']:.0f} MB"
    )
    if handler:
        run = _run(_handler, str(csv_path), contract)
        print(
            f"handler on moto (S3 in and out, idempotency, StartExecution): {run['seconds']:.2f} s, "
            f"ratio {run['seconds'] / base['best']:.2f}, peak RSS {run['peak_mb']:.0f} MB"
        )
    verdict = "meets" if ratio <= TARGET_RATIO else "MISSES"
    print(
        f"ratio ingest/read_csv: median of the per-round ratios {ratio:.2f} (rounds: "
        f"{', '.join(f'{r:.2f}' for r in rounds)}; best/best {ours['best'] / base['best']:.2f}, median/median "
        f"{ours['median'] / base['median']:.2f}) (target <= {TARGET_RATIO}): {verdict} the target"
    )
    return [
        {
            "name": "ingest_csv_vs_pandas_read_csv",
            "ours": round(ours["median"], 4),
            "baseline": round(base["median"], 4),
            "unit": "s",
            "ratio": round(ratio, 4),
            "target": f"<= {TARGET_RATIO}",
        }
    ]


def run() -> list[dict[str, Any]]:
    """`python -m bench ingest`: the default measurement (bench/__main__.py writes results.json)."""
    return measure()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=220, help="size of the generated CSV in MB (at least 200)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--skip-handler", action="store_true", help="leave out the end-to-end run on moto")
    args = parser.parse_args(argv)
    write_results(args.results, measure(args.mb, args.repeats, handler=not args.skip_handler))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
