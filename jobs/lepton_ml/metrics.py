"""Metrics through scikit-learn, and the `name=value` lines that MetricDefinitions match."""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

import numpy as np
from sklearn import metrics as skm

METRIC_VALUE_REGEX = r"([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?|nan|inf)"


def format_value(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6f}" if abs(value) >= 1e-4 else f"{value:.6e}"


def emit(values: Mapping[str, float], prefix: str = "", stream: TextIO | None = None) -> None:
    """Prints one `name=value` line per metric, flushed so that log streaming sees it at once."""
    out = stream or sys.stdout
    for name, value in values.items():
        print(f"{prefix}{name}={format_value(float(value))}", file=out)
    out.flush()


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def quick_classification(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The per-epoch validation figures."""
    return {
        "accuracy": float(skm.accuracy_score(y_true, y_pred)),
        "f1_macro": float(skm.f1_score(y_true, y_pred, average="macro", zero_division=0)),
    }


def epoch_reporter(
    task: str,
    y_val: np.ndarray,
    y_val_original: np.ndarray,
    decode: Callable[[np.ndarray], np.ndarray],
    stream: TextIO | None = None,
) -> Callable[[Any], dict[str, float]]:
    """The per-epoch callback of train.py: validation figures, printed as `name=value` lines.

    ``decode`` maps the model's standardised regression output back to the target's units.
    """

    def report(epoch: Any) -> dict[str, float]:
        output = epoch.validation_output
        if task == "classification":
            figures = quick_classification(y_val, output.argmax(dim=1).numpy())
        else:
            figures = regression_metrics(y_val_original, decode(output.squeeze(-1).numpy()))
        named = {f"validation:{k}": v for k, v in figures.items()}
        emit({"epoch": epoch.epoch, "train:loss": epoch.train_loss, "validation:loss": epoch.validation_loss,
              **named, "train:samples_per_second": epoch.samples_per_second}, stream=stream)  # fmt: skip
        return named

    return report


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R2 in the target's original units."""
    return {
        "rmse": float(math.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": float(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else math.nan,
    }


def _roc_auc(y_true: np.ndarray, proba: np.ndarray) -> tuple[float | None, float | None, str | None]:
    """(macro, weighted, note). Binary: AUC of the second class. Multiclass: one-vs-rest."""
    k = proba.shape[1]
    present = np.unique(y_true)
    if len(present) < 2:
        return None, None, "ROC-AUC is undefined: the test split holds a single class"
    if k == 2:
        auc = float(skm.roc_auc_score(y_true, proba[:, 1]))
        return auc, auc, None
    if len(present) < k:
        # One-vs-rest over the classes present; the model's probabilities still cover all classes.
        onehot = np.eye(k)[y_true][:, present]
        scores = proba[:, present]
        macro = float(skm.roc_auc_score(onehot, scores, average="macro"))
        weighted = float(skm.roc_auc_score(onehot, scores, average="weighted"))
        return macro, weighted, f"one-vs-rest over the {len(present)} classes present in the test split"
    return (
        float(skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=list(range(k)))),
        float(skm.roc_auc_score(y_true, proba, multi_class="ovr", average="weighted", labels=list(range(k)))),
        None,
    )


def classification_report(y_true: np.ndarray, proba: np.ndarray, classes: Sequence[Any]) -> dict[str, Any]:
    """Accuracy, precision/recall/F1 (macro and weighted), ROC-AUC, confusion matrix and per-class figures."""
    k = len(classes)
    labels = list(range(k))
    y_pred = proba.argmax(axis=1)
    out: dict[str, Any] = {"accuracy": float(skm.accuracy_score(y_true, y_pred))}
    for average in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=average, zero_division=0
        )
        out[f"precision_{average}"] = float(p)
        out[f"recall_{average}"] = float(r)
        out[f"f1_{average}"] = float(f)
    auc, auc_weighted, note = _roc_auc(y_true, proba)
    out["roc_auc"] = auc
    out["roc_auc_weighted"] = auc_weighted
    out["log_loss"] = float(skm.log_loss(y_true, proba, labels=labels))
    p, r, f, support = skm.precision_recall_fscore_support(y_true, y_pred, labels=labels, average=None, zero_division=0)
    per_class = {}
    for i, label in enumerate(classes):
        entry: dict[str, Any] = {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": int(support[i]),
        }
        positives = y_true == i
        entry["roc_auc"] = (
            float(skm.roc_auc_score(positives, proba[:, i])) if 0 < positives.sum() < len(y_true) else None
        )
        per_class[str(label)] = entry
    return {
        "metrics": out,
        "roc_auc_note": note,
        "per_class": per_class,
        "confusion_matrix": {
            "labels": list(classes),
            "matrix": skm.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
    }
