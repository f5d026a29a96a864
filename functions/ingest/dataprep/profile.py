"""stats.json: per-feature statistics of the training split (docs/contracts.md section 1).

They are the standardisation parameters for training and the baseline for drift monitoring, so
they are computed on the training split only. For a feature, `count` is the number of training
rows and `null_count` how many of them are empty; every other figure is over the non-empty values.
Mean, std, min, max, histogram and category frequencies are exact. Quantiles are exact up to
QUANTILE_SAMPLE training rows; beyond, they are the exact quantiles of the first QUANTILE_SAMPLE
training rows, which are stored in row-hash order and so form a uniform random sample (rank error
about 1/sqrt(QUANTILE_SAMPLE), under 0.3 %).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from lepton.data.models import ColumnKind, DataContract, Task

STATS_SCHEMA_VERSION = 1
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
HISTOGRAM_BINS = 10
QUANTILE_SAMPLE = 1 << 17
SPLIT_METHOD = "row-hash64"


STATS_BLOCK = 1 << 16
"""Values profiled at a time: a block and its temporaries stay in the CPU's cache, so each feature is
read from memory twice (extremes and sum, then deviations and histogram) instead of once per step."""


def _edges(low: float, high: float) -> tuple[float, float, npt.NDArray[np.float64]]:
    """numpy.histogram's range and edges for values in [low, high] (a constant gets [v - 0.5, v + 0.5]).
    Where numpy gives up (a range too narrow for distinct edges at that magnitude) it is widened."""
    if high == low:
        low, high = low - 0.5, high + 0.5
    if not np.all(np.diff(np.linspace(low, high, HISTOGRAM_BINS + 1)) > 0):
        # a range too narrow for 10 distinct float edges (numpy raises here): widen it around its middle
        middle, half = (low + high) / 2, float(np.spacing(max(abs(low), abs(high)))) * HISTOGRAM_BINS
        low, high = middle - half, middle + half
    return low, high, np.linspace(low, high, HISTOGRAM_BINS + 1)


def _bin_counts(values: npt.NDArray[np.float64], low: float, high: float, edges: npt.NDArray[np.float64]) -> Any:
    """How many values fall in each bin, as numpy.histogram counts them: a value on an inner edge
    falls in the bin to its right, the maximum in the last bin."""
    scratch = np.subtract(values, low)
    np.divide(scratch, high - low, out=scratch)  # divide first: subnormal ranges
    np.multiply(scratch, HISTOGRAM_BINS, out=scratch)
    index = scratch.astype(np.intp)
    np.clip(index, 0, HISTOGRAM_BINS - 1, out=index)
    # floating-point rounding may put a value next to an edge in the neighbouring bin: correct it as numpy
    # does (an upper edge of +inf for the last bin keeps the maximum in it)
    flags = np.less(values, np.take(edges[:-1], index, out=scratch))
    np.subtract(index, flags, out=index)
    uppers = np.append(edges[1:-1], np.inf)
    np.greater_equal(values, np.take(uppers, index, out=scratch), out=flags)
    np.add(index, flags, out=index)
    return np.bincount(index, minlength=HISTOGRAM_BINS)


def _edges_decide(low: float, high: float) -> bool:
    """Whether a value's bin is simply the number of inner edges at or below it. numpy guesses a bin
    from the value's offset and moves it by at most one to the edges' side: the same bin whenever its
    guess and the edges are each off by less than half a bin. Both are off by a few units in the last
    place of the values' magnitude, so a bin wider than 2**10 such units (and a range of normal
    numbers) settles it; a narrower range takes numpy's way."""
    width = (high - low) / HISTOGRAM_BINS
    spacing = float(np.spacing(2 * max(abs(low), abs(high))))
    return high - low > 1e-290 and width > 2.0**10 * spacing


def histogram(values: npt.NDArray[np.float64], low: float, high: float) -> tuple[list[int], list[float]]:
    """numpy.histogram(values, bins=HISTOGRAM_BINS) given the values' min and max: the same edges and
    the same counts, computed a block at a time."""
    low, high, edges = _edges(low, high)
    counts = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
    if _edges_decide(low, high):
        # a count of the values below each inner edge: nine comparisons of a block in the cache
        below = np.zeros(HISTOGRAM_BINS + 1, dtype=np.int64)
        flags = np.empty(min(STATS_BLOCK, len(values)), dtype=bool)
        inner = [float(e) for e in edges[1:-1]]
        for start in range(0, len(values), STATS_BLOCK):
            block = values[start : start + STATS_BLOCK]
            scratch = flags[: block.size]
            for i, edge in enumerate(inner, start=1):
                below[i] += np.count_nonzero(np.less(block, edge, out=scratch))
        below[HISTOGRAM_BINS] = len(values)
        counts = np.diff(below)
    else:
        for start in range(0, len(values), STATS_BLOCK):
            counts += _bin_counts(values[start : start + STATS_BLOCK], low, high, edges)
    return [int(c) for c in counts], [float(e) for e in edges]


def _present(column: pa.Array) -> npt.NDArray[np.float64]:
    """The non-empty values (a view when there is no empty cell)."""
    if column.null_count:
        column = column.drop_null()
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def _moments(values: npt.NDArray[np.float64]) -> tuple[float, float, float, float]:
    """min, max, mean and population standard deviation (two-pass: the mean, then the deviations)."""
    low, high = float(values.min()), float(values.max())
    mean = float(values.sum() / values.size)
    squares = 0.0
    scratch = np.empty(min(STATS_BLOCK, values.size), dtype=np.float64)
    for start in range(0, values.size, STATS_BLOCK):
        block = values[start : start + STATS_BLOCK]
        deviations = np.subtract(block, mean, out=scratch[: block.size])
        squares += float(np.square(deviations, out=deviations).sum())  # not np.dot: BLAS would wake its threads
    return low, high, mean, math.sqrt(squares / values.size)


def quantiles(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """numpy.quantile(values, QUANTILES) (its default 'linear' method), the same numbers computed from
    one sort of the values: numpy partitions the array again for each pair of neighbouring ranks."""
    ordered = np.sort(values)
    n = ordered.size
    q = np.asarray(QUANTILES, dtype=np.float64)
    virtual = (n - 1) * q  # numpy's virtual index for 'linear'
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1
    previous[above] = following[above] = -1
    below = virtual < 0
    previous[below] = following[below] = 0
    lower, upper = previous.astype(np.intp), following.astype(np.intp)
    gamma = virtual - lower
    a, b = ordered[lower], ordered[upper]
    difference = b - a
    return np.where(gamma >= 0.5, b - difference * (1 - gamma), a + difference * gamma)


def numeric_stats(column: pa.Array) -> dict[str, Any]:
    values = _present(column)
    low, high, mean, std = _moments(values)
    quantile_values = quantiles(values[:QUANTILE_SAMPLE])
    counts, edges = histogram(values, low, high)
    return {
        "mean": mean,
        "std": std,  # population standard deviation (ddof=0)
        "min": low,
        "max": high,
        "quantiles": {str(q): float(v) for q, v in zip(QUANTILES, quantile_values, strict=True)},
        "histogram": {"edges": edges, "counts": counts},
    }


def category_frequencies(column: pa.Array) -> dict[str, float]:
    """Relative frequency of each non-empty value, keys sorted."""
    if pa.types.is_dictionary(column.type):
        indices = column.indices.drop_null() if column.indices.null_count else column.indices
        found = np.bincount(indices.to_numpy(zero_copy_only=False), minlength=len(column.dictionary))
        pairs = [(v, int(c)) for v, c in zip(column.dictionary.to_pylist(), found.tolist(), strict=True) if c]
    else:
        counts = pc.value_counts(column.drop_null())
        pairs = list(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))
    total = sum(count for _, count in pairs)
    return {str(value): count / total for value, count in sorted(pairs)}


def feature_stats(name: str, kind: ColumnKind, column: pa.Array) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "kind": kind.value, "count": len(column), "null_count": column.null_count}
    if kind is ColumnKind.NUMERIC:
        entry.update(numeric_stats(column))
    else:
        entry["categories"] = category_frequencies(column)
    return entry


def target_stats(task: Task, train_target: pa.Array, classes: list[Any]) -> dict[str, Any]:
    if task is Task.REGRESSION:
        low, high, mean, std = _moments(_present(train_target))
        return {"kind": "numeric", "mean": mean, "std": std, "min": low, "max": high}
    if pa.types.is_dictionary(train_target.type):
        indices = train_target.indices.to_numpy(zero_copy_only=False)
        counts = np.bincount(indices, minlength=len(train_target.dictionary))
        found = dict(zip(train_target.dictionary.to_pylist(), counts.tolist(), strict=True))
    else:
        tally = pc.value_counts(train_target)
        found = dict(zip(tally.field("values").to_pylist(), tally.field("counts").to_pylist(), strict=True))
    return {"kind": "categorical", "classes": classes, "counts": {str(c): int(found.get(c, 0)) for c in classes}}


def stats_document(
    *,
    project: str,
    dataset_id: str,
    contract: DataContract,
    features: list[dict[str, Any]],
    target: dict[str, Any],
    rows: dict[str, int],
) -> dict[str, Any]:
    split = contract.split
    doc = {
        "schema_version": STATS_SCHEMA_VERSION,
        "project": project,
        "dataset_id": dataset_id,
        "task": contract.task.value,
        "target": contract.target,
        "features": features,
        "target_stats": target,
        "rows": rows,
        "split": {
            "method": SPLIT_METHOD,
            "fractions": {"train": split.train, "validation": split.validation, "test": split.test},
        },
    }
    _check_finite(doc)
    return doc


def _check_finite(doc: Any, path: str = "$") -> None:
    """stats.json is strict JSON: a NaN or infinity here is a bug upstream (cleaning forbids them)."""
    if isinstance(doc, float) and not math.isfinite(doc):
        raise ValueError(f"non-finite statistic at {path}")
    if isinstance(doc, dict):
        for key, value in doc.items():
            _check_finite(value, f"{path}.{key}")
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            _check_finite(value, f"{path}[{i}]")
