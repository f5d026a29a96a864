"""Training throughput of train.py's loop against a plain hand-written PyTorch loop, same run.

Both loops train the same MLP from the same initial weights on the same tensors (a synthetic
tabular classification set written in the curated layout and loaded through train.py's own data
path), with the same batch size, optimiser and number of epochs. Ours is the entry point's loop as
it runs in a job: seeded shuffling, per-epoch validation loss and metrics printed as name=value
(to a null stream here), early-stopping bookkeeping. The plain loop only trains.

    PYTHONPATH=shared:jobs:. python bench/train_bench.py        # prints, and updates bench/results.json
    python -m bench train                                         # through bench/__main__.py: run()

Throughput is samples/s = training rows x epochs / wall time; each loop runs `--repeats` times,
alternating, after one warm-up each, and the best run of each counts (least disturbed by other
work on the machine). On the CPU both loops use one torch thread by default (--threads). Target:
ours >= 0.9 x the plain loop. Uses CUDA when present.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NAME = "train_throughput_vs_plain_pytorch_loop"
TARGET = ">= 0.9"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _dataset(work: Path, rows: int, features: int) -> dict[str, Path]:
    """A synthetic 3-class tabular set in the curated layout (written by the test helper)."""
    import pandas as pd
    from sklearn.datasets import make_classification

    curated = _load("lepton_bench_curated_data", ROOT / "tests" / "unit" / "jobs" / "curated_data.py")
    x, y = make_classification(n_samples=rows, n_features=features, n_informative=features // 2, n_classes=3,
                               random_state=0)  # fmt: skip
    frame = pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(features)])
    frame["label"] = y
    dataset = curated.write_curated(work, frame, target="label", task="classification", project="bench")
    stats = work / "stats-channel"
    stats.mkdir()
    (stats / "stats.json").write_bytes((dataset / "stats.json").read_bytes())
    return {"train": dataset / "train", "validation": dataset / "validation", "stats": stats}


def _plain_loop(net: Any, optimizer: Any, x: Any, y: Any, epochs: int, batch_size: int, seed: int) -> None:
    """What one writes by hand: shuffle, slice, forward, loss, backward, step."""
    import torch

    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator(device=x.device)
    generator.manual_seed(seed)
    n = len(x)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator, device=x.device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = loss_fn(net(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()


def measure(
    rows: int = 60_000, features: int = 32, epochs: int = 2, batch_size: int = 256, repeats: int = 5, threads: int = 1
) -> dict:
    """The results.json entry of this benchmark (the best run of each loop)."""
    sys.path.insert(0, str(ROOT / "jobs"))
    import torch

    if threads > 0:
        torch.set_num_threads(threads)

    train = _load("lepton_bench_train_entry", ROOT / "jobs" / "train.py")
    from lepton_ml import training
    from lepton_ml.hyperparams import parse_hyperparameters

    hps = parse_hyperparameters({"epochs": str(epochs), "batch_size": str(batch_size), "hidden_sizes": "128,64",
                                 "patience": str(epochs + 1), "dropout": "0.1", "seed": "1"})  # fmt: skip
    device = training.resolve_device("auto")
    with tempfile.TemporaryDirectory(prefix="lepton-train-bench-") as work:
        data = train.load_training_data(_dataset(Path(work), rows, features))
    n_train = len(data.x["train"])

    def fresh() -> Any:
        training.set_seeds(hps.seed, device)
        return train.prepare(hps, data, device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def time_ours(epochs_: int) -> float:
        prepared = fresh()
        short = hps.model_copy(update={"epochs": epochs_, "patience": epochs_ + 1})
        sync()
        started = time.perf_counter()
        result = train.run_loop(short, data, prepared, stream=io.StringIO())
        sync()
        assert result.epochs_run == epochs_
        return time.perf_counter() - started

    def time_plain(epochs_: int) -> float:
        prepared = fresh()
        x, y = prepared.tensors["train"]
        sync()
        started = time.perf_counter()
        _plain_loop(prepared.net, prepared.optimizer, x, y, epochs_, hps.batch_size, hps.seed)
        sync()
        return time.perf_counter() - started

    time_ours(1)  # warm-up: thread pools, allocator, lazy imports
    time_plain(1)
    ours_runs, plain_runs = [], []
    for _ in range(repeats):
        ours_runs.append(n_train * epochs / time_ours(epochs))
        plain_runs.append(n_train * epochs / time_plain(epochs))
    ours, baseline = max(ours_runs), max(plain_runs)
    print(f"train_bench: device={device} threads={torch.get_num_threads()} rows={n_train} features={features} "
          f"batch={batch_size} epochs={epochs}")  # fmt: skip
    for i, (a, b) in enumerate(zip(ours_runs, plain_runs, strict=True), 1):
        print(f"train_bench: run {i}: train.py loop {a:,.0f} samples/s, plain loop {b:,.0f} samples/s")
    entry = {"name": NAME, "ours": round(ours, 1), "baseline": round(baseline, 1), "unit": "samples/s",
             "ratio": round(ours / baseline, 4), "target": TARGET}  # fmt: skip
    print(f"train_bench: best train.py loop {ours:,.0f} samples/s vs plain loop {baseline:,.0f} samples/s: "
          f"ratio {ours / baseline:.3f} (target {TARGET})")  # fmt: skip
    return entry


def run() -> list[dict]:
    """The results.json entries with the default settings (what bench/__main__.py calls)."""
    return [measure()]


def write_result(entry: dict, path: Path) -> None:
    """Replaces this benchmark's entry in results.json (a list), keeping the others."""
    existing = json.loads(path.read_text()) if path.exists() else []
    kept = [e for e in existing if e.get("name") != entry["name"]]
    path.write_text(json.dumps([*kept, entry], indent=2) + "\n")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="train_bench.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads for both loops (0: torch's default); 1 keeps a shared 2-core "
                             "machine's noise out of the ratio")  # fmt: skip
    parser.add_argument("--results", type=Path, default=None, help="results.json to update")
    args = parser.parse_args(argv or [])
    entry = measure(rows=args.rows, epochs=args.epochs, batch_size=args.batch_size, repeats=args.repeats,
                    threads=args.threads)  # fmt: skip
    if args.results is not None:
        write_result(entry, args.results)
    return [entry]


if __name__ == "__main__":
    main(sys.argv[1:] or ["--results", str(ROOT / "bench" / "results.json")])
