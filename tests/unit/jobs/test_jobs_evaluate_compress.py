"""evaluate.py and compress.py as processing jobs, and the evaluation library on other tasks."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import torch

from lepton_ml import archive
from lepton_ml.evaluation import evaluate, fgsm, load_test_set, plot
from lepton_ml.model import ModelConfig, storage_to_dense
from lepton_ml.predictor import Predictor

if TYPE_CHECKING:
    from conftest import Sandbox, TrainingRun

pytestmark = pytest.mark.slow
PNG = b"\x89PNG\r\n\x1a\n"


def test_evaluation_report_covers_the_contract(breast_cancer_evaluation: dict, breast_cancer_tarball: Path) -> None:
    evaluation = breast_cancer_evaluation
    doc = evaluation["doc"]
    m = doc["metrics"]
    keys = [
        "accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
        "roc_auc",
        "fgsm_accuracy",
        "latency_p50_ms",
        "latency_p95_ms",
        "latency_p99_ms",
    ]
    for key in keys:
        assert isinstance(m[key], float), key
    assert doc["model"]["archive_sha256"] == archive.sha256_file(breast_cancer_tarball)
    assert doc["test_rows"] == sum(doc["confusion_matrix"]["matrix"][i][j] for i in range(2) for j in range(2))
    assert doc["confusion_matrix"]["labels"] == [0, 1]
    assert set(doc["per_class"]) == {"0", "1"}
    assert sum(c["support"] for c in doc["per_class"].values()) == doc["test_rows"]
    lat = doc["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] and lat["samples"] == 50
    assert doc["adversarial"]["epsilon"] == 0.3 and doc["adversarial"]["method"] == "fgsm"
    # an attack of 0.3 standard deviations hurts a model that is not adversarially trained
    assert m["fgsm_accuracy"] < m["accuracy"]
    for name in doc["plots"]:
        assert (evaluation["dir"] / name).read_bytes().startswith(PNG)
    assert set(doc["plots"]) == {"confusion_matrix.png", "roc_curve.png"}
    assert f"test:roc_auc={m['roc_auc']:.6f}" in evaluation["stdout"]


def test_fgsm_with_zero_epsilon_changes_nothing(breast_cancer_run: TrainingRun, datasets: dict[str, Path]) -> None:
    predictor = Predictor.load(breast_cancer_run.model_dir)
    test = load_test_set(datasets["breast_cancer"] / "test", predictor)
    clean = float((predictor.predict_encoded(test.x).indices == test.y).mean())
    assert fgsm(predictor, test, 0.0)["accuracy"] == clean
    assert fgsm(predictor, test, 1.0)["accuracy"] < clean


def _tampered_copy(tarball: Path, out: Path, member: str) -> Path:
    out.mkdir(parents=True)
    target = out / "model.tar.gz"
    with tarfile.open(tarball) as src, tarfile.open(target, "w:gz") as dst:
        for info in src.getmembers():
            data = src.extractfile(info).read() if info.isfile() else b""  # type: ignore[union-attr]
            if info.name == member:
                data = data[:-1] + bytes([data[-1] ^ 1])
            dst.addfile(info, io.BytesIO(data))
    return target


def test_evaluate_refuses_an_archive_that_fails_its_checksums(
    breast_cancer_tarball: Path, datasets: dict[str, Path], tmp_path: Path, entry_point: Any
) -> None:
    bad = _tampered_copy(breast_cancer_tarball, tmp_path / "tampered", "model.pt")
    out, message = tmp_path / "evaluation", tmp_path / "output" / "message"
    code = entry_point("evaluate").main(
        ["--model-dir", str(bad), "--test-dir", str(datasets["breast_cancer"] / "test"), "--output-dir", str(out),
         "--failure-file", str(message)]
    )  # fmt: skip
    assert code == 1
    assert "model.pt does not match its sha256" in message.read_text()
    assert not (out / "evaluation.json").exists()


def test_processing_arguments_are_checked(tmp_path: Path, entry_point: Any) -> None:
    message = tmp_path / "message"
    assert entry_point("evaluate").main(["--fgsm-epsilon", "abc", "--failure-file", str(message)]) == 1
    assert "argument --fgsm-epsilon: invalid float value: 'abc'" in message.read_text()
    assert entry_point("compress").main(["--method", "zip", "--failure-file", str(message)]) == 1
    assert "argument --method: invalid choice: 'zip'" in message.read_text()


def test_evaluate_regression_in_process(diabetes_run: TrainingRun, datasets: dict[str, Path], tmp_path: Path) -> None:
    predictor = Predictor.load(diabetes_run.model_dir)
    test = load_test_set(datasets["diabetes"] / "test", predictor)
    doc, report = evaluate(predictor, test, epsilon=0.2, latency_samples=20)
    m = doc["metrics"]
    rmse = float(np.sqrt(np.mean((report["values"] - test.y_original) ** 2)))
    assert m["rmse"] == pytest.approx(rmse)
    assert m["mae"] <= m["rmse"] and m["r2"] > 0.2
    assert m["fgsm_rmse"] > m["rmse"]
    assert "accuracy" not in m and "confusion_matrix" not in doc
    assert plot(predictor, test, report, tmp_path) == ["predicted_vs_actual.png", "residuals.png"]
    # the regression's test RMSE is in target units: compare with the target's spread
    assert m["rmse"] < float(np.std(test.y_original))


@pytest.fixture(scope="module")
def quantized(sandbox: Sandbox, breast_cancer_tarball: Path, datasets: dict[str, Path]) -> dict:
    out = sandbox.tmp / "quantized"
    result, _ = sandbox.process(
        "compress.py",
        ["--model-dir", str(breast_cancer_tarball.parent), "--test-dir", str(datasets["breast_cancer"] / "test"),
         "--output-dir", str(out), "--method", "quantize", "--latency-samples", "30"],
        name="compress-quantize",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {"doc": json.loads((out / "compression.json").read_text()), "tarball": out / "model.tar.gz"}


def test_quantized_child_is_smaller_and_reports_its_deltas(quantized: dict, breast_cancer_tarball: Path) -> None:
    doc = quantized["doc"]
    parent_sha = archive.sha256_file(breast_cancer_tarball)
    assert doc["parent"]["archive_sha256"] == parent_sha
    assert doc["child"]["archive_sha256"] == archive.sha256_file(quantized["tarball"])
    assert doc["child"]["size_bytes"]["archive"] == quantized["tarball"].stat().st_size
    assert doc["parent"]["size_bytes"]["archive"] == breast_cancer_tarball.stat().st_size
    assert doc["child"]["size_bytes"]["model_pt"] < 0.6 * doc["parent"]["size_bytes"]["model_pt"]
    assert doc["smaller"] and doc["deltas"]["size_bytes"]["archive"] < 0
    for key in ("accuracy", "f1_macro", "roc_auc"):
        delta = doc["deltas"]["metrics"][key]
        assert delta == pytest.approx(doc["child"]["metrics"][key] - doc["parent"]["metrics"][key])
        assert abs(delta) <= 0.05  # int8 weights barely move a model this size
    assert set(doc["deltas"]["latency_ms"]) == {"p50", "p95", "p99"}


def test_quantized_child_serves_through_the_inference_path(
    quantized: dict, breast_cancer_tarball: Path, datasets: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acceptance 4: the quantised model loads and predicts through model_fn / predict_fn."""
    import pandas as pd
    from inference import input_fn, model_fn, output_fn, predict_fn

    monkeypatch.setenv("LEPTON_MODEL_SHA256", archive.sha256_file(quantized["tarball"]))
    child = model_fn(str(quantized["tarball"].parent))
    assert child.config.quantization == "dynamic_int8"
    int8_linear = torch.ao.nn.quantized.dynamic.Linear
    assert sum(isinstance(m, int8_linear) for m in child.model.modules()) == len(child.config.hidden_sizes) + 1
    meta = child.metadata
    assert meta["parent_archive_sha256"] == archive.sha256_file(breast_cancer_tarball)
    assert meta["compression"]["quantization"] == "dynamic_int8"

    test = pd.read_parquet(datasets["breast_cancer"] / "test")
    rows = test.drop(columns="target").to_dict(orient="records")
    prediction = predict_fn(input_fn(json.dumps(rows), "application/json"), child)
    body, content_type = output_fn(prediction, "application/json")
    answer = json.loads(body)
    assert content_type == "application/json"
    assert answer["model"]["sha256"] == archive.sha256_file(quantized["tarball"])
    accuracy = float(np.mean(np.array(answer["predictions"]) == test["target"].to_numpy()))
    assert accuracy == pytest.approx(quantized["doc"]["child"]["metrics"]["accuracy"])
    assert np.allclose(np.sum(answer["probabilities"], axis=1), 1.0)


def test_evaluating_the_int8_child_attacks_it_through_its_float_copy(
    quantized: dict, datasets: dict[str, Path], tmp_path: Path
) -> None:
    model_dir, _ = archive.locate(quantized["tarball"], tmp_path)
    child = Predictor.load(model_dir)
    test = load_test_set(datasets["breast_cancer"] / "test", child)
    doc, _ = evaluate(child, test, epsilon=0.3, latency_samples=10)
    assert doc["model"]["quantization"] == "dynamic_int8"
    assert doc["metrics"]["accuracy"] == pytest.approx(quantized["doc"]["child"]["metrics"]["accuracy"])
    assert doc["metrics"]["fgsm_accuracy"] < doc["metrics"]["accuracy"]


def test_multiclass_evaluation(wine_run: TrainingRun, datasets: dict[str, Path], tmp_path: Path) -> None:
    predictor = Predictor.load(wine_run.model_dir)
    test = load_test_set(datasets["wine"] / "test", predictor)
    doc, report = evaluate(predictor, test, epsilon=0.1, latency_samples=10)
    assert doc["confusion_matrix"]["labels"] == [0, 1, 2]
    assert np.array(doc["confusion_matrix"]["matrix"]).sum() == doc["test_rows"] == len(test.x)
    assert set(doc["per_class"]) == {"0", "1", "2"}
    assert 0.5 < doc["metrics"]["roc_auc"] <= 1.0 and doc["metrics"]["roc_auc_weighted"] is not None
    assert plot(predictor, test, report, tmp_path) == ["confusion_matrix.png", "roc_curve.png"]
    assert (tmp_path / "roc_curve.png").read_bytes().startswith(PNG)


def test_pruned_child_has_real_zeros_and_is_smaller(
    breast_cancer_tarball: Path, datasets: dict[str, Path], tmp_path: Path, entry_point: Any
) -> None:
    out = tmp_path / "pruned"
    code = entry_point("compress").main(
        ["--model-dir", str(breast_cancer_tarball), "--test-dir", str(datasets["breast_cancer"] / "test"),
         "--output-dir", str(out), "--method", "prune", "--prune-amount", "0.7", "--latency-samples", "10",
         "--failure-file", str(tmp_path / "message")]
    )  # fmt: skip
    assert code == 0, (tmp_path / "message").read_text()
    doc = json.loads((out / "compression.json").read_text())
    assert doc["compression"]["pruning"]["amount"] == 0.7
    assert doc["child"]["size_bytes"]["archive"] < doc["parent"]["size_bytes"]["archive"]
    assert doc["child"]["size_bytes"]["model_pt"] < doc["parent"]["size_bytes"]["model_pt"]

    child_dir = archive.extract(out / "model.tar.gz", tmp_path / "child")
    archive.verify_model_dir(child_dir)
    config = ModelConfig.from_json(json.loads((child_dir / "model_config.json").read_text()))
    stored = torch.load(child_dir / "model.pt", weights_only=True)
    assert any(name.endswith(".__csr") for name in stored), "the pruned weights are stored sparse"
    state = storage_to_dense(stored)
    weights = [tensor for name, tensor in state.items() if name.endswith("weight")]
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    assert zeros / total == pytest.approx(0.7, abs=0.01)
    child = Predictor.load(child_dir)
    assert child.predict_encoded(np.zeros((1, config.input_dim), dtype=np.float32)).probabilities is not None


def test_compress_needs_the_parent_tarball(breast_cancer_run: TrainingRun, tmp_path: Path, entry_point: Any) -> None:
    message = tmp_path / "message"
    code = entry_point("compress").main(
        ["--model-dir", str(breast_cancer_run.model_dir), "--test-dir", str(tmp_path), "--output-dir", str(tmp_path),
         "--failure-file", str(message)]
    )  # fmt: skip
    assert code == 1
    assert "must be the parent's model.tar.gz" in message.read_text()
