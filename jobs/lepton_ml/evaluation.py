"""Evaluation of a loaded archive on the test split: quality, latency, robustness, plots."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from lepton_ml import metrics
from lepton_ml.data import read_split
from lepton_ml.model import float_copy
from lepton_ml.predictor import Predictor


@dataclass
class TestSet:
    frame: pd.DataFrame
    x: np.ndarray  # encoded features
    y: np.ndarray  # class indices, or the standardised target
    y_original: np.ndarray  # class indices, or the target in its own units

    def rows(self, feature_names: list[str]) -> list[list[Any]]:
        """Raw rows as a client would send them (nulls as None)."""
        values = self.frame[feature_names].astype(object).to_numpy()
        return [[None if (isinstance(v, float) and math.isnan(v)) or v is pd.NA else v for v in row] for row in values]


def load_test_set(test_dir: Path, predictor: Predictor) -> TestSet:
    pre = predictor.preprocessor
    frame = read_split(test_dir, "test", [*pre.feature_names, pre.target], pre.target)
    y = pre.encode_target(frame[pre.target].tolist(), "test")
    y_original = y if pre.task == "classification" else frame[pre.target].to_numpy(dtype=np.float64)
    return TestSet(frame, pre.encode_frame(frame), y, y_original)


def quality(predictor: Predictor, test: TestSet) -> dict[str, Any]:
    """Classification: the metrics.classification_report document. Regression: RMSE, MAE, R2."""
    prediction = predictor.predict_encoded(test.x)
    if predictor.task == "classification":
        assert prediction.probabilities is not None
        report = metrics.classification_report(test.y, prediction.probabilities, predictor.preprocessor.classes)
        report["probabilities"] = prediction.probabilities
        return report
    assert prediction.values is not None
    return {"metrics": metrics.regression_metrics(test.y_original, prediction.values), "values": prediction.values}


def latency(predictor: Predictor, rows: list[list[Any]], samples: int, warmup: int = 10) -> dict[str, float]:
    """Milliseconds per single-row prediction, raw values to prediction (validation, encoding, forward)."""
    for i in range(min(warmup, samples)):
        predictor.predict_rows([rows[i % len(rows)]])
    timings = np.empty(samples)
    for i in range(samples):
        started = time.perf_counter()
        predictor.predict_rows([rows[i % len(rows)]])
        timings[i] = (time.perf_counter() - started) * 1000.0
    return {
        "p50": float(np.percentile(timings, 50)),
        "p95": float(np.percentile(timings, 95)),
        "p99": float(np.percentile(timings, 99)),
        "mean": float(timings.mean()),
        "samples": samples,
    }


def fgsm(predictor: Predictor, test: TestSet, epsilon: float) -> dict[str, Any]:
    """Fast gradient sign attack in standardised feature space, on numeric features only.

    The gradient comes from the float model (the dequantised copy of an int8 model); the perturbed
    rows are then scored by the model itself.
    """
    device = predictor.device  # an int8 model runs on the CPU, and so does its float copy
    surrogate: nn.Module = float_copy(predictor.model, predictor.config).to(device).eval()
    x = torch.tensor(test.x, dtype=torch.float32, device=device, requires_grad=True)
    output = surrogate(x)
    if predictor.task == "classification":
        loss = nn.functional.cross_entropy(output, torch.as_tensor(test.y, dtype=torch.long, device=device))
    else:
        target = torch.as_tensor(test.y, dtype=torch.float32, device=device)
        loss = nn.functional.mse_loss(output.squeeze(-1), target)
    (grad,) = torch.autograd.grad(loss, x)
    mask = torch.as_tensor(predictor.preprocessor.numeric_mask(), dtype=torch.float32, device=device)
    x_adv = (x.detach() + epsilon * grad.sign() * mask).cpu().numpy()
    attacked = predictor.predict_encoded(x_adv)
    result: dict[str, Any] = {
        "method": "fgsm",
        "epsilon": epsilon,
        "space": "standardised numeric features (one-hot columns untouched)",
        "rows": len(test.x),
    }
    if predictor.task == "classification":
        assert attacked.indices is not None
        result["accuracy"] = float((attacked.indices == test.y).mean())
    else:
        assert attacked.values is not None
        result["rmse"] = float(math.sqrt(float(np.mean((attacked.values - test.y_original) ** 2))))
    return result


def plot(predictor: Predictor, test: TestSet, report: dict[str, Any], out_dir: Path) -> list[str]:
    """PNG plots (matplotlib, Agg): confusion matrix and ROC curves, or predicted-vs-actual and residuals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay, RocCurveDisplay

    written = []

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=100)
        plt.close(fig)
        written.append(name)

    if predictor.task == "classification":
        classes = [str(c) for c in predictor.preprocessor.classes]
        fig, ax = plt.subplots(figsize=(5, 4))
        ConfusionMatrixDisplay(np.array(report["confusion_matrix"]["matrix"]), display_labels=classes).plot(ax=ax)
        ax.set_title("Confusion matrix (test split)")
        save(fig, "confusion_matrix.png")
        proba = report["probabilities"]
        fig, ax = plt.subplots(figsize=(5, 4))
        curves = [1] if len(classes) == 2 else range(len(classes))
        for i in curves:
            positives = test.y == i
            if 0 < positives.sum() < len(test.y):
                RocCurveDisplay.from_predictions(positives, proba[:, i], name=f"class {classes[i]}", ax=ax)
        ax.set_title("ROC (one-vs-rest)")
        save(fig, "roc_curve.png")
    else:
        values = report["values"]
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.scatter(test.y_original, values, s=8)
        low, high = float(np.min(test.y_original)), float(np.max(test.y_original))
        ax.plot([low, high], [low, high], color="grey", linewidth=1)
        ax.set_xlabel("actual")
        ax.set_ylabel("predicted")
        ax.set_title("Predicted vs actual (test split)")
        save(fig, "predicted_vs_actual.png")
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.hist(values - test.y_original, bins=30)
        ax.set_xlabel("residual (predicted - actual)")
        ax.set_title("Residuals (test split)")
        save(fig, "residuals.png")
    return written


def headline(task: str) -> list[str]:
    """The metrics compared between a parent and a compressed child."""
    if task == "classification":
        return ["accuracy", "f1_macro", "f1_weighted", "roc_auc", "log_loss"]
    return ["rmse", "mae", "r2"]


def evaluate(
    predictor: Predictor, test: TestSet, *, epsilon: float, latency_samples: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the evaluation.json document without its plot list, the raw report that plot() draws)."""
    report = quality(predictor, test)
    lat = latency(predictor, test.rows(predictor.preprocessor.feature_names), latency_samples)
    adversarial = fgsm(predictor, test, epsilon)
    flat = dict(report["metrics"])
    if predictor.task == "classification":
        flat["fgsm_accuracy"] = adversarial["accuracy"]
    else:
        flat["fgsm_rmse"] = adversarial["rmse"]
    flat.update({f"latency_{k}_ms": lat[k] for k in ("p50", "p95", "p99")})
    doc: dict[str, Any] = {
        "schema_version": 1,
        "task": predictor.task,
        "model": {
            "archive_sha256": predictor.archive_sha256,
            "content_sha256": predictor.content_sha256,
            "dataset_id": predictor.preprocessor.dataset_id,
            "training_job_name": predictor.metadata.get("training_job_name"),
            "quantization": predictor.config.quantization,
            "pruning": predictor.config.pruning,
        },
        "test_rows": len(test.x),
        "metrics": flat,
        "latency_ms": lat,
        "adversarial": adversarial,
    }
    if predictor.task == "classification":
        doc.update(per_class=report["per_class"], confusion_matrix=report["confusion_matrix"])
        if report.get("roc_auc_note"):
            doc["roc_auc_note"] = report["roc_auc_note"]
    return doc, report
