"""Issue 5, acceptance 1 and 4, through the local SageMaker: train.py as a training job on breast
cancer, evaluate.py and compress.py as processing jobs (through processing_entry.py, as the
lifecycle's Evaluate state runs them), and the int8 child served by inference.py and serve.py."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import select
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aws_kit import untar
from smjobs_kit import JOBS, Dataset, JobsBench, final_metrics, log_lines, s3_input

pytestmark = pytest.mark.slow

# The model the unit tests also train (tests/unit/jobs/conftest.py BREAST_CANCER_HPS).
HYPERPARAMETERS = {"epochs": 200, "patience": 20, "hidden_sizes": "64,32", "seed": 7}


@pytest.fixture(scope="module")
def dataset(bench: JobsBench, curated_data, tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    frame, target, task, _ = curated_data.sklearn_frame("breast_cancer")
    local = curated_data.write_curated(
        tmp_path_factory.mktemp("curated"), frame, target=target, task=task, project="cancer"
    )
    return bench.upload_curated(local, "cancer")


@pytest.fixture(scope="module")
def trained(bench: JobsBench, dataset: Dataset) -> dict[str, Any]:
    job = bench.train("cancer-train", dataset, **HYPERPARAMETERS)
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    return job


@pytest.fixture(scope="module")
def artifact(bench: JobsBench, trained: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The trained model.tar.gz, downloaded from S3 into a folder of its own."""
    folder = tmp_path_factory.mktemp("parent")
    (folder / "model.tar.gz").write_bytes(bench.get(trained["ModelArtifacts"]["S3ModelArtifacts"]))
    return folder / "model.tar.gz"


@pytest.fixture(scope="module")
def evaluation(bench: JobsBench, trained: dict[str, Any], dataset: Dataset) -> dict[str, Any]:
    output = f"s3://{bench.bucket}/models/cancer-eval/evaluation"
    job = bench.process(
        "cancer-eval",
        "evaluate.py",
        ["--model-dir", "/opt/ml/processing/model", "--test-dir", "/opt/ml/processing/test",
         "--output-dir", "/opt/ml/processing/evaluation", "--fgsm-epsilon", "0.1"],
        [s3_input("model", trained["ModelArtifacts"]["S3ModelArtifacts"], "/opt/ml/processing/model"),
         s3_input("test", dataset.uri + "test/", "/opt/ml/processing/test")],
        output, "/opt/ml/processing/evaluation",
    )  # fmt: skip
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    return {"job": job, "doc": json.loads(bench.get(output + "/evaluation.json")), "output": output}


@pytest.fixture(scope="module")
def compressed(bench: JobsBench, trained: dict[str, Any], dataset: Dataset) -> dict[str, Any]:
    output = f"s3://{bench.bucket}/models/cancer-int8/output"
    job = bench.process(
        "cancer-int8",
        "compress.py",
        ["--model-dir", "/opt/ml/processing/model", "--test-dir", "/opt/ml/processing/test",
         "--output-dir", "/opt/ml/processing/output", "--method", "quantize"],
        [s3_input("model", trained["ModelArtifacts"]["S3ModelArtifacts"], "/opt/ml/processing/model"),
         s3_input("test", dataset.uri + "test/", "/opt/ml/processing/test")],
        output, "/opt/ml/processing/output",
    )  # fmt: skip
    assert job["ProcessingJobStatus"] == "Completed", job.get("FailureReason")
    return {
        "job": job,
        "doc": json.loads(bench.get(output + "/compression.json")),
        "tarball": bench.get(output + "/model.tar.gz"),
        "uri": output + "/model.tar.gz",
    }


@pytest.fixture(scope="module")
def child_dir(compressed: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("child")
    (folder / "model.tar.gz").write_bytes(compressed["tarball"])
    return folder


def _predict(model_dir: Path, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """inference.py's model_fn / input_fn / predict_fn / output_fn, as the inference toolkit calls them."""
    from inference import input_fn, model_fn, output_fn, predict_fn

    model = model_fn(str(model_dir))
    prediction = predict_fn(input_fn(json.dumps(rows), "application/json"), model)
    body, content_type = output_fn(prediction, "application/json")
    assert content_type == "application/json"
    answer: dict[str, Any] = json.loads(body)
    return answer


def _sklearn_accuracy(dataset: Dataset) -> float:
    from sklearn.neural_network import MLPClassifier

    train, test = dataset.split("train"), dataset.split("test")
    features = [c for c in train.columns if c != "target"]
    mean, std = train[features].mean(), train[features].std(ddof=0)
    model = MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=500, random_state=0)
    model.fit((train[features] - mean) / std, train["target"])
    return float(model.score((test[features] - mean) / std, test["target"]))


def test_training_job_runs_train_py_and_records_its_metrics(
    bench: JobsBench, trained: dict[str, Any], dataset: Dataset
) -> None:
    metrics = final_metrics(trained)
    assert {"train:loss", "validation:loss", "validation:accuracy", "validation:f1_macro", "epoch"} <= set(metrics)
    assert metrics["validation:accuracy"] >= 0.9
    assert trained["ModelArtifacts"]["S3ModelArtifacts"] == (
        f"s3://{bench.bucket}/models/cancer-train/cancer-train/output/model.tar.gz"
    )
    files = untar(bench.get(trained["ModelArtifacts"]["S3ModelArtifacts"]))
    assert {"model.pt", "model_config.json", "preprocessing.json", "metadata.json", "checksums.json",
            "code/inference.py"} <= set(files)  # fmt: skip
    metadata = json.loads(files["metadata.json"])
    assert metadata["training_job_name"] == "cancer-train"
    assert metadata["dataset_id"] == dataset.dataset_id
    # the kept epoch's figures are what SageMaker recorded last
    assert metadata["metrics"]["validation:loss"] == pytest.approx(metrics["validation:loss"], abs=1e-6)
    assert files["code/inference.py"] == (JOBS / "inference.py").read_bytes()
    logs = log_lines(bench.cloud, "/aws/sagemaker/TrainingJobs", "cancer-train")
    assert any(line.startswith("validation:accuracy=") for line in logs)


def test_test_accuracy_is_within_two_points_of_scikit_learns_mlp_and_evaluation_reproduces_it(
    artifact: Path, evaluation: dict[str, Any], dataset: Dataset
) -> None:
    """Acceptance 1: the trained model's accuracy on the test split (computed here through the
    serving path) is within 2 points of MLPClassifier(64, 32) on the same split, and the evaluation
    processing job reports exactly that figure."""
    test = dataset.split("test")
    rows = test.drop(columns="target").to_dict(orient="records")
    answer = _predict(artifact.parent, rows)
    ours = float(np.mean(np.array(answer["predictions"]) == test["target"].to_numpy()))
    reference = _sklearn_accuracy(dataset)
    print(f"test accuracy on {len(test)} rows: ours {ours:.4f}, scikit-learn MLPClassifier {reference:.4f}")
    assert ours >= reference - 0.02, (ours, reference)

    doc = evaluation["doc"]
    assert doc["test_rows"] == len(test)
    assert doc["metrics"]["accuracy"] == pytest.approx(ours, abs=1e-12)
    assert doc["model"]["archive_sha256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert doc["model"]["dataset_id"] == dataset.dataset_id
    assert doc["adversarial"]["method"] == "fgsm" and doc["adversarial"]["epsilon"] == 0.1
    assert set(doc["plots"]) == {"confusion_matrix.png", "roc_curve.png"}


def test_evaluation_job_uploads_its_report_and_logs_its_figures(bench: JobsBench, evaluation: dict[str, Any]) -> None:
    prefix = evaluation["output"].removeprefix(f"s3://{bench.bucket}/")
    assert bench.keys(prefix) == [f"{prefix}/{name}" for name in
                                  ("confusion_matrix.png", "evaluation.json", "roc_curve.png")]  # fmt: skip
    logs = log_lines(bench.cloud, "/aws/sagemaker/ProcessingJobs", "cancer-eval")
    (logged,) = [float(line.split("=", 1)[1]) for line in logs if line.startswith("test:accuracy=")]
    assert logged == pytest.approx(evaluation["doc"]["metrics"]["accuracy"], abs=1e-6)


def test_compression_job_writes_a_smaller_child_and_reports_its_deltas(
    compressed: dict[str, Any], artifact: Path
) -> None:
    """Acceptance 4: the int8 child is smaller than its parent; compression.json reports the deltas."""
    doc = compressed["doc"]
    parent_bytes = artifact.read_bytes()
    assert len(compressed["tarball"]) < len(parent_bytes)
    assert doc["method"] == "quantize" and doc["smaller"] is True
    assert doc["parent"]["archive_sha256"] == hashlib.sha256(parent_bytes).hexdigest()
    assert doc["child"]["archive_sha256"] == hashlib.sha256(compressed["tarball"]).hexdigest()
    assert doc["parent"]["size_bytes"]["archive"] == len(parent_bytes)
    assert doc["deltas"]["size_bytes"]["archive"] == len(compressed["tarball"]) - len(parent_bytes)
    for name in ("accuracy", "f1_macro", "roc_auc"):
        delta = doc["deltas"]["metrics"][name]
        assert delta == pytest.approx(doc["child"]["metrics"][name] - doc["parent"]["metrics"][name])
        assert abs(delta) <= 0.05
    assert set(doc["deltas"]["latency_ms"]) == {"p50", "p95", "p99"}


def test_quantised_child_loads_and_predicts_through_inference_py(
    child_dir: Path, compressed: dict[str, Any], artifact: Path, dataset: Dataset
) -> None:
    test = dataset.split("test")
    answer = _predict(child_dir, test.drop(columns="target").to_dict(orient="records"))
    accuracy = float(np.mean(np.array(answer["predictions"]) == test["target"].to_numpy()))
    assert accuracy == pytest.approx(compressed["doc"]["child"]["metrics"]["accuracy"], abs=1e-12)
    assert np.allclose(np.sum(answer["probabilities"], axis=1), 1.0)
    assert answer["model"]["sha256"] == hashlib.sha256(compressed["tarball"]).hexdigest()
    metadata = json.loads(untar(compressed["tarball"])["metadata.json"])
    assert metadata["compression"]["quantization"] == "dynamic_int8"
    assert metadata["parent_archive_sha256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()


def _serve(model_dir: Path) -> tuple[subprocess.Popen[str], int]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, str(JOBS / "serve.py"), "--model-dir", str(model_dir), "--host", "127.0.0.1", "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    seen = []
    while True:
        ready, _, _ = select.select([process.stdout], [], [], 90)
        line = process.stdout.readline() if ready else ""
        seen.append(line)
        match = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
        if match:
            return process, int(match.group(1))
        if not line:
            process.kill()
            raise AssertionError(f"serve.py did not start: {''.join(seen)}")


def _post(port: int, body: str, content_type: str, accept: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("POST", "/invocations", body=body, headers={"Content-Type": content_type, "Accept": accept})
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    return response.status, text


def test_quantised_child_serves_over_http_with_serve_py(
    child_dir: Path, compressed: dict[str, Any], dataset: Dataset, tmp_path: Path
) -> None:
    """serve.py on loopback, hosting the extracted child archive's own code/inference.py."""
    extracted = tmp_path / "model"
    with tarfile.open(child_dir / "model.tar.gz") as archive:
        archive.extractall(extracted, filter="data")
    test = dataset.split("test")
    features = test.drop(columns="target")
    expected = _predict(child_dir, features.to_dict(orient="records"))
    process, port = _serve(extracted)
    try:
        status, body = _post(port, json.dumps({"instances": features.to_numpy().tolist()}), "application/json",
                             "application/json")  # fmt: skip
        assert status == 200, body
        answer = json.loads(body)
        assert answer["predictions"] == expected["predictions"]
        checksums = (extracted / "checksums.json").read_bytes()
        assert answer["model"]["content_sha256"] == hashlib.sha256(checksums).hexdigest()
        csv = "\n".join(",".join(repr(float(v)) for v in row) for row in features.to_numpy()[:5])
        status, body = _post(port, csv, "text/csv", "text/csv")
        assert status == 200, body
        assert [int(float(line.split(",")[0])) for line in body.strip().splitlines()] == expected["predictions"][:5]
        status, body = _post(port, json.dumps({"instances": [[1.0, 2.0]]}), "application/json", "application/json")
        assert status == 400 and "error" in json.loads(body)
    finally:
        process.terminate()
        process.wait(30)
