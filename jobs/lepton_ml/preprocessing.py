"""Feature encoding from stats.json: standardised numerics, one-hot categoricals, encoded targets.

numpy only: the inference containers load this module without pandas.
The same Preprocessor is written to the archive as preprocessing.json and read back at serving.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from lepton_ml.errors import JobFailure, RequestError

SCHEMA_VERSION = 1
Task = Literal["classification", "regression"]


def _scale(std: float | None) -> float:
    """The divisor for standardisation: a constant (or unknown) feature keeps scale 1."""
    return float(std) if std is not None and math.isfinite(std) and std > 0 else 1.0


def _category_key(value: Any) -> str | None:
    """How a raw value is compared with the training vocabulary (whose keys are strings)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: Literal["numeric", "categorical"]
    mean: float = 0.0
    std: float = 1.0
    categories: tuple[str, ...] = ()

    @property
    def scale(self) -> float:
        return _scale(self.std)

    @property
    def width(self) -> int:
        return 1 if self.kind == "numeric" else len(self.categories)

    def to_json(self) -> dict[str, Any]:
        if self.kind == "numeric":
            return {"name": self.name, "kind": "numeric", "mean": self.mean, "std": self.std, "scale": self.scale}
        return {"name": self.name, "kind": "categorical", "categories": list(self.categories)}


@dataclass(frozen=True)
class Preprocessor:
    task: Task
    target: str
    features: tuple[FeatureSpec, ...]
    classes: tuple[Any, ...] = ()
    target_mean: float = 0.0
    target_std: float = 1.0
    dataset_id: str | None = None
    _class_index: dict[Any, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._class_index.update({value: i for i, value in enumerate(self.classes)})

    # -- construction and serialisation ------------------------------------------------------
    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> Preprocessor:
        """From a stats.json document (already validated against the contract)."""
        features = []
        for f in stats["features"]:
            if f["kind"] == "numeric":
                mean = f.get("mean")
                features.append(
                    FeatureSpec(
                        f["name"],
                        "numeric",
                        mean=float(mean) if mean is not None else 0.0,
                        std=float(f.get("std") or 0.0),
                    )
                )
            else:
                features.append(FeatureSpec(f["name"], "categorical", categories=tuple(sorted(f["categories"]))))
        target_stats = stats["target_stats"]
        if stats["task"] == "classification":
            return cls(
                "classification",
                stats["target"],
                tuple(features),
                classes=tuple(target_stats["classes"]),
                dataset_id=stats.get("dataset_id"),
            )
        return cls("regression", stats["target"], tuple(features), target_mean=float(target_stats["mean"]),
                   target_std=float(target_stats["std"]), dataset_id=stats.get("dataset_id"))  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "task": self.task,
            "target": self.target,
            "dataset_id": self.dataset_id,
            "features": [f.to_json() for f in self.features],
            "input_dim": self.input_dim,
        }
        if self.task == "classification":
            doc["classes"] = list(self.classes)
        else:
            doc.update(target_mean=self.target_mean, target_std=self.target_std, target_scale=self.target_scale)
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Preprocessor:
        if doc.get("schema_version") != SCHEMA_VERSION:
            raise JobFailure(f"preprocessing.json has schema_version {doc.get('schema_version')!r}; expected 1.")
        features = tuple(
            FeatureSpec(f["name"], "numeric", mean=float(f["mean"]), std=float(f["std"]))
            if f["kind"] == "numeric"
            else FeatureSpec(f["name"], "categorical", categories=tuple(f["categories"]))
            for f in doc["features"]
        )
        return cls(
            doc["task"],
            doc["target"],
            features,
            classes=tuple(doc.get("classes", ())),
            target_mean=float(doc.get("target_mean", 0.0)),
            target_std=float(doc.get("target_std", 1.0)),
            dataset_id=doc.get("dataset_id"),
        )

    # -- shape ---------------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def input_dim(self) -> int:
        return sum(f.width for f in self.features)

    @property
    def output_dim(self) -> int:
        return len(self.classes) if self.task == "classification" else 1

    @property
    def target_scale(self) -> float:
        return _scale(self.target_std)

    def numeric_mask(self) -> np.ndarray:
        """True for the encoded columns that hold a standardised numeric feature (not one-hot)."""
        return np.concatenate([np.full(f.width, f.kind == "numeric") for f in self.features]).astype(bool)

    # -- features --------------------------------------------------------------------------------
    def encode_columns(self, columns: Mapping[str, Any]) -> np.ndarray:
        """Encodes raw columns (name -> 1-D array-like of raw values) into a float32 matrix.

        Numeric nulls take the training mean (0 once standardised); categorical nulls and values
        unseen in training give an all-zero one-hot block.
        """
        blocks: list[np.ndarray] = []
        n: int | None = None
        for spec in self.features:
            values = columns[spec.name]
            if spec.kind == "numeric":
                x = np.asarray(values, dtype=np.float64)
                x = np.where(np.isnan(x), spec.mean, x)
                blocks.append(((x - spec.mean) / spec.scale)[:, None])
            else:
                lookup: dict[str | None, int] = {c: i for i, c in enumerate(spec.categories)}
                idx = np.fromiter((lookup.get(_category_key(v), -1) for v in values), dtype=np.int64)
                onehot = np.zeros((len(idx), spec.width), dtype=np.float64)
                hit = idx >= 0
                onehot[np.nonzero(hit)[0], idx[hit]] = 1.0
                blocks.append(onehot)
            n = len(blocks[-1])
        if n is None:  # no features: the stats contract forbids it
            raise JobFailure("The model has no input features.")
        with np.errstate(over="ignore"):  # beyond float32: inf, which encode_request reports
            return np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.float32)

    def encode_frame(self, frame: Any) -> np.ndarray:
        """Encodes a pandas DataFrame holding (at least) the feature columns."""
        columns = {}
        for spec in self.features:
            series = frame[spec.name]
            if spec.kind == "numeric":
                columns[spec.name] = series.to_numpy(dtype=np.float64, na_value=np.nan)
            else:
                columns[spec.name] = series.to_numpy(dtype=object, na_value=None)
        return self.encode_columns(columns)

    # -- targets -------------------------------------------------------------------------------
    def encode_target(self, values: Any, split: str) -> np.ndarray:
        """Class indices (int64) for classification; the standardised target (float32) for regression."""
        if self.task == "classification":
            raw = list(values)
            idx = np.fromiter((self._class_index.get(v, -1) for v in raw), dtype=np.int64, count=len(raw))
            if (idx < 0).any():
                bad = sorted({repr(v) for v, i in zip(raw, idx, strict=True) if i < 0})[:5]
                raise JobFailure(
                    f"The {split} data has target '{self.target}' values {', '.join(bad)} that are not among "
                    f"the classes in stats.json {list(self.classes)}."
                )
            return idx
        y = np.asarray(values, dtype=np.float64)
        if not np.isfinite(y).all():
            raise JobFailure(f"The {split} data has missing or non-finite target '{self.target}' values.")
        return ((y - self.target_mean) / self.target_scale).astype(np.float32)

    def decode_regression(self, standardised: np.ndarray) -> np.ndarray:
        return standardised.astype(np.float64) * self.target_scale + self.target_mean

    def class_label(self, index: int) -> Any:
        return self.classes[index]

    # -- inference requests ----------------------------------------------------------------------
    def encode_request(self, instances: Sequence[Any]) -> np.ndarray:
        """Validates and encodes request rows: lists in feature order, or objects keyed by feature.

        Raises RequestError (HTTP 400) naming the row and the feature for any bad value.
        """
        if not isinstance(instances, list | tuple) or not instances:
            raise RequestError("the request holds no rows: send at least one instance")
        names = self.feature_names
        columns: dict[str, list[Any]] = {name: [] for name in names}
        for r, row in enumerate(instances):
            if isinstance(row, Mapping):
                unknown = [k for k in row if k not in columns]
                if unknown:
                    raise RequestError(f"unknown feature '{unknown[0]}' in row {r}", field=str(unknown[0]), row=r)
                missing = [name for name in names if name not in row]
                if missing:
                    raise RequestError(f"missing feature '{missing[0]}' in row {r}", field=missing[0], row=r)
                values = [row[name] for name in names]
            elif isinstance(row, list | tuple):
                if len(row) != len(names):
                    raise RequestError(
                        f"row {r} has {len(row)} values; the model expects {len(names)} features "
                        f"in this order: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''}",
                        row=r,
                    )
                values = list(row)
            else:
                raise RequestError(f"row {r} must be a list of feature values or an object of feature: value", row=r)
            for spec, value in zip(self.features, values, strict=True):
                columns[spec.name].append(self._check_value(spec, value, r))
        encoded = self.encode_columns(columns)
        overflow = np.argwhere(~np.isfinite(encoded))
        if len(overflow):
            row, column = (int(i) for i in overflow[0])
            name = [f.name for f in self.features for _ in range(f.width)][column]
            raise RequestError(
                f"value {columns[name][row]!r} for numeric feature '{name}' in row {row} is out of range",
                field=name,
                row=row,
            )
        return encoded

    @staticmethod
    def _check_value(spec: FeatureSpec, value: Any, row: int) -> Any:
        if value is None:
            return math.nan if spec.kind == "numeric" else None
        if spec.kind == "numeric":
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise RequestError(
                    f"non-numeric value {value!r} for numeric feature '{spec.name}' in row {row}",
                    field=spec.name,
                    row=row,
                )
            try:
                number = float(value)
            except ValueError:
                raise RequestError(
                    f"non-numeric value {value!r} for numeric feature '{spec.name}' in row {row}",
                    field=spec.name,
                    row=row,
                ) from None
            if not math.isfinite(number):
                raise RequestError(
                    f"non-finite value {value!r} for numeric feature '{spec.name}' in row {row}; "
                    "send null for a missing value",
                    field=spec.name,
                    row=row,
                )
            return number
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise RequestError(
                f"value {value!r} for categorical feature '{spec.name}' in row {row} must be a string",
                field=spec.name,
                row=row,
            )
        return value
