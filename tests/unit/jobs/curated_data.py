"""Writes the curated dataset layout of docs/contracts.md section 1 from a pandas frame.

The ingest function produces this layout in production; the SageMaker job tests and the training
benchmark build it from scikit-learn's bundled datasets with this helper.

Where section 1 leaves a detail open this helper decides, and says so:
- canonical_row: the row's values in contract order (features, then target) as compact JSON, with
  nulls as null and integral floats kept as floats;
- content sha256: sha256 over the sorted per-row hex digests, concatenated.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_FRACTIONS = {"train": 0.70, "validation": 0.15, "test": 0.15}
QUANTILES = ("0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99")


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def canonical_row(values: Sequence[Any]) -> bytes:
    return json.dumps([_plain(v) for v in values], separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def split_of(digest_hex: str, fractions: Mapping[str, float]) -> str:
    position = int(digest_hex[:8], 16) / 2**32
    cumulative = 0.0
    for name in ("train", "validation", "test"):
        cumulative += fractions[name]
        if position < cumulative:
            return name
    return "test"


def _numeric_stats(series: pd.Series) -> dict[str, Any]:
    values = series.dropna().to_numpy(dtype=np.float64)
    counts, edges = np.histogram(values, bins=10)
    return {
        "kind": "numeric",
        "count": len(values),
        "null_count": int(series.isna().sum()),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=0)),
        "min": float(values.min()),
        "max": float(values.max()),
        "quantiles": {q: float(np.quantile(values, float(q))) for q in QUANTILES},
        "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
    }


def _categorical_stats(series: pd.Series) -> dict[str, Any]:
    present = series.dropna()
    frequencies = present.value_counts(normalize=True)
    return {
        "kind": "categorical",
        "count": len(present),
        "null_count": int(series.isna().sum()),
        "categories": {str(k): float(frequencies[k]) for k in sorted(frequencies.index, key=str)},
    }


def write_curated(
    root: Path,
    frame: pd.DataFrame,
    *,
    target: str,
    task: str,
    project: str = "test-project",
    categorical: Sequence[str] = (),
    fractions: Mapping[str, float] | None = None,
    parts: int = 1,
) -> Path:
    """Writes <root>/<dataset_id>/{train,validation,test}/part-*.parquet, stats.json, manifest.json."""
    fractions = dict(fractions or DEFAULT_FRACTIONS)
    features = [c for c in frame.columns if c != target]
    clean = pd.DataFrame(
        {
            **{c: frame[c].astype("string") if c in categorical else frame[c].astype("float64") for c in features},
            target: frame[target].astype("float64") if task == "regression" else frame[target],
        }
    )
    ordered = [*features, target]
    digests = [hashlib.sha256(canonical_row(row)).hexdigest() for row in clean[ordered].itertuples(index=False)]
    content_sha256 = hashlib.sha256("".join(sorted(digests)).encode()).hexdigest()
    dataset_id = "ds-" + content_sha256[:20]
    splits = pd.Series([split_of(d, fractions) for d in digests], index=clean.index)

    out = root / dataset_id
    files: dict[str, str] = {}
    for name in ("train", "validation", "test"):
        part_frame = clean[splits == name].reset_index(drop=True)
        (out / name).mkdir(parents=True, exist_ok=True)
        for i, chunk in enumerate(np.array_split(np.arange(len(part_frame)), parts)):
            path = out / name / f"part-{i:05d}.parquet"
            part_frame.iloc[chunk].to_parquet(path, index=False)
            files[f"{name}/{path.name}"] = hashlib.sha256(path.read_bytes()).hexdigest()

    train = clean[splits == "train"]
    feature_stats = [
        {"name": c, **(_categorical_stats(train[c]) if c in categorical else _numeric_stats(train[c]))}
        for c in features
    ]
    if task == "classification":
        classes = sorted(_plain(v) for v in clean[target].dropna().unique())
        counts = train[target].value_counts()
        target_stats: dict[str, Any] = {
            "kind": "categorical",
            "classes": classes,
            "counts": {str(c): int(counts.get(c, 0)) for c in classes},
        }
    else:
        y = train[target].to_numpy(dtype=np.float64)
        target_stats = {"kind": "numeric", "mean": float(y.mean()), "std": float(y.std(ddof=0)),
                        "min": float(y.min()), "max": float(y.max())}  # fmt: skip
    stats = {
        "schema_version": 1,
        "project": project,
        "dataset_id": dataset_id,
        "task": task,
        "target": target,
        "features": feature_stats,
        "target_stats": target_stats,
        "rows": {name: int((splits == name).sum()) for name in ("train", "validation", "test")},
        "split": {"method": "row-sha256", "fractions": fractions},
    }
    (out / "stats.json").write_text(json.dumps(stats, indent=2), encoding="utf-8")
    manifest = {"dataset_id": dataset_id, "content_sha256": content_sha256, "files": files}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return out


def sklearn_frame(name: str) -> tuple[pd.DataFrame, str, str, list[str]]:
    """(frame, target, task, categorical columns) for breast_cancer, wine or diabetes.

    diabetes gets its 'sex' column as a categorical ('female'/'male') so one-hot encoding is covered.
    """
    from sklearn import datasets

    if name == "breast_cancer":
        return datasets.load_breast_cancer(as_frame=True).frame, "target", "classification", []
    if name == "wine":
        return datasets.load_wine(as_frame=True).frame, "target", "classification", []
    if name == "diabetes":
        frame = datasets.load_diabetes(as_frame=True, scaled=False).frame
        frame["sex"] = np.where(frame["sex"] > 1.5, "male", "female")
        return frame, "target", "regression", ["sex"]
    raise ValueError(f"unknown dataset {name!r}")
