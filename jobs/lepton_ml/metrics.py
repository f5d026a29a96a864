"""Metrics, and the `name=value` lines that MetricDefinitions match.

The evaluation job's figures come from scikit-learn. The per-epoch validation figures of the training
job (accuracy, macro F1, RMSE, MAE, R2) are computed with numpy: importing scikit-learn costs about 2 s
of CPU per job (it loads scipy.stats), paid by every trial of a tuning job, and these five formulas
are short. A unit test holds them equal to scikit-learn's.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import numpy as np

if TYPE_CHECKING:
    from types import ModuleType


def _sklearn_metrics() -> ModuleType:
    from sklearn import metrics as skm

    return skm


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
    """The per-epoch validation figures: accuracy, and F1 averaged over the labels present in either
    array (scikit-learn's f1_score(average="macro", zero_division=0))."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        return {"accuracy": math.nan, "f1_macro": math.nan}
    labels = np.union1d(y_true, y_pred)
    true_hits = y_true[:, None] == labels[None, :]
    pred_hits = y_pred[:, None] == labels[None, :]
    tp = (true_hits & pred_hits).sum(axis=0)
    denominator = true_hits.sum(axis=0) + pred_hits.sum(axis=0)  # 2tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros(len(labels)), where=denominator > 0)
    return {"accuracy": float((y_true == y_pred).mean()), "f1_macro": float(f1.mean())}


def quick_regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The per-epoch validation figures in the target's units: RMSE, MAE and R2 (as scikit-learn's
    r2_score: 1 for a perfect fit of a constant target, 0 for an imperfect one, nan below two rows)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    error = y_true - np.asarray(y_pred, dtype=np.float64)
    if len(y_true) == 0:
        return {"rmse": math.nan, "mae": math.nan, "r2": math.nan}
    residual = float(np.square(error).sum())
    total = float(np.square(y_true - y_true.mean()).sum())
    if len(y_true) < 2:
        r2 = math.nan
    elif total > 0:
        r2 = 1.0 - residual / total
    else:
        r2 = 1.0 if residual == 0 else 0.0
    return {"rmse": math.sqrt(residual / len(y_true)), "mae": float(np.abs(error).mean()), "r2": r2}


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
            figures = quick_regression(y_val_original, decode(output.squeeze(-1).numpy()))
        named = {f"validation:{k}": v for k, v in figures.items()}
        emit({"epoch": epoch.epoch, "train:loss": epoch.train_loss, "validation:loss": epoch.validation_loss,
              **named, "train:samples_per_second": epoch.samples_per_second}, stream=stream)  # fmt: skip
        return named

    return report


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R2 in the target's original units."""
    skm = _sklearn_metrics()
    return {
        "rmse": float(math.sqrt(skm.mean_squared_error(y_true, y_pred))),
        "mae": float(skm.mean_absolute_error(y_true, y_pred)),
        "r2": float(skm.r2_score(y_true, y_pred)) if len(y_true) > 1 else math.nan,
    }


def _roc_auc(y_true: np.ndarray, proba: np.ndarray) -> tuple[float | None, float | None, str | None]:
    """(macro, weighted, note). Binary: AUC of the second class. Multiclass: one-vs-rest."""
    skm = _sklearn_metrics()
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
    skm = _sklearn_metrics()
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
