"""train.py run as a SageMaker training job would run it: a subprocess with SM_* variables."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pytest
import torch

from lepton_ml import archive
from lepton_ml.model import ModelConfig, load_model

if TYPE_CHECKING:
    from conftest import Sandbox, TrainingRun

pytestmark = pytest.mark.slow


def metric_values(stdout: str, definitions: list[dict[str, str]]) -> dict[str, list[float]]:
    """What SageMaker extracts from the log with the job's MetricDefinitions."""
    found: dict[str, list[float]] = {}
    for line in stdout.splitlines():
        for definition in definitions:
            match = re.search(definition["Regex"], line)
            if match:
                found.setdefault(definition["Name"], []).append(float(match.group(1)))
    return found


def test_training_writes_a_self_serving_archive_and_metrics(
    breast_cancer_run: TrainingRun, metric_definitions: list[dict[str, str]]
) -> None:
    model_dir = breast_cancer_run.model_dir
    checksums = archive.verify_model_dir(model_dir)
    for name in ("model.pt", "model_config.json", "preprocessing.json", "metadata.json", "code/inference.py",
                 "code/lepton_ml/predictor.py"):  # fmt: skip
        assert name in checksums
    assert not (model_dir / "code" / "lepton_ml" / "__pycache__").exists()

    metadata = json.loads((model_dir / "metadata.json").read_text())
    stats = json.loads(next(breast_cancer_run.root.glob("input/data/stats/stats.json")).read_text())
    assert metadata["dataset_id"] == stats["dataset_id"]
    assert metadata["training_job_name"] == "breast-cancer"
    assert metadata["hyperparameters"]["hidden_sizes"] == "64,32"
    assert metadata["seed"] == 7 and metadata["device"] == "cpu"
    assert metadata["parent_archive_sha256"] is None

    values = metric_values(breast_cancer_run.result.stdout, metric_definitions)  # type: ignore[union-attr]
    for name in ("epoch", "train:loss", "validation:loss", "validation:accuracy", "validation:f1_macro",
                 "train:samples_per_second"):  # fmt: skip
        assert name in values, f"no {name} line"
    epochs = metadata["epochs_run"]
    assert values["epoch"] == [float(e) for e in range(1, epochs + 1)]
    # The last value of every metric (what SageMaker records) is the kept epoch's.
    assert values["validation:loss"][-1] == pytest.approx(min(values["validation:loss"]), abs=1e-6)
    assert values["validation:accuracy"][-1] == pytest.approx(metadata["metrics"]["validation:accuracy"], abs=1e-6)
    assert values["validation:accuracy"][-1] > 0.9
    history = json.loads((breast_cancer_run.output_dir / "data" / "history.json").read_text())
    assert len(history) == epochs


def test_accuracy_matches_sklearn_mlp_and_evaluate_reproduces_it(
    breast_cancer_run: TrainingRun, breast_cancer_evaluation: dict, datasets: dict[str, Path]
) -> None:
    """Acceptance 1: test accuracy within 2 points of MLPClassifier on the same split, and
    evaluate.py reports the same figure."""
    from inference import input_fn, model_fn, predict_fn
    from sklearn.neural_network import MLPClassifier

    dataset = datasets["breast_cancer"]
    train = pd.read_parquet(dataset / "train")
    test = pd.read_parquet(dataset / "test")
    features = [c for c in train.columns if c != "target"]
    mean, std = train[features].mean(), train[features].std(ddof=0)
    sk = MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=500, random_state=0)
    sk.fit((train[features] - mean) / std, train["target"])
    sklearn_accuracy = float(sk.score((test[features] - mean) / std, test["target"]))

    predictor = model_fn(str(breast_cancer_run.model_dir))
    body = json.dumps({"instances": test[features].to_numpy().tolist()})
    predicted = predict_fn(input_fn(body, "application/json"), predictor)["predictions"]
    ours = float(np.mean(np.array(predicted) == test["target"].to_numpy()))
    print(f"test accuracy: ours {ours:.4f}, sklearn MLPClassifier {sklearn_accuracy:.4f}")
    assert ours >= sklearn_accuracy - 0.02, (ours, sklearn_accuracy)

    evaluation = breast_cancer_evaluation["doc"]
    assert evaluation["metrics"]["accuracy"] == pytest.approx(ours, abs=1e-12)
    assert f"test:accuracy={ours:.6f}" in breast_cancer_evaluation["stdout"]


def _state(model_dir: Path) -> dict[str, torch.Tensor]:
    config = ModelConfig.from_json(json.loads((model_dir / "model_config.json").read_text()))
    return load_model(config, model_dir / "model.pt").state_dict()


def test_same_seed_gives_the_same_model(
    wine_run: TrainingRun, sandbox: Sandbox, datasets: dict[str, Path], wine_hyperparameters: dict[str, str]
) -> None:
    again = sandbox.train(datasets["wine"], ["--epochs", "4"], hyperparameters=wine_hyperparameters, name="wine-again")
    assert again.result is not None and again.result.returncode == 0, again.result.stderr
    first, second = _state(wine_run.model_dir), _state(again.model_dir)
    assert all(torch.equal(first[k], second[k]) for k in first)
    m1 = json.loads((wine_run.model_dir / "metadata.json").read_text())["metrics"]
    m2 = json.loads((again.model_dir / "metadata.json").read_text())["metrics"]
    assert m1 == m2


def test_regression_with_a_categorical_feature(
    diabetes_run: TrainingRun, datasets: dict[str, Path], metric_definitions: list[dict[str, str]]
) -> None:
    run = diabetes_run
    assert run.result is not None
    values = metric_values(run.result.stdout, metric_definitions)
    assert {"validation:rmse", "validation:mae", "validation:r2"} <= values.keys()
    assert "validation:accuracy" not in values
    stats = json.loads((datasets["diabetes"] / "stats.json").read_text())
    # reported in the target's own units: an RMSE well below the target's spread, R2 clearly positive
    assert values["validation:rmse"][-1] < 0.9 * stats["target_stats"]["std"]
    assert values["validation:r2"][-1] > 0.2
    pre = json.loads((run.model_dir / "preprocessing.json").read_text())
    sex = next(f for f in pre["features"] if f["name"] == "sex")
    assert sex == {"name": "sex", "kind": "categorical", "categories": ["female", "male"]}
    assert pre["input_dim"] == 11  # 9 numeric + a two-column one-hot


def test_hyperparameters_json_as_the_sdk_writes_it(wine_run: TrainingRun) -> None:
    """Values JSON-encoded as strings, SageMaker's own names beside ours, the command line on top."""
    used = json.loads((wine_run.model_dir / "metadata.json").read_text())["hyperparameters"]
    assert used["hidden_sizes"] == "16,8" and used["optimizer"] == "sgd" and used["learning_rate"] == "0.01"
    assert used["epochs"] == "4"
    config = json.loads((wine_run.model_dir / "model_config.json").read_text())
    assert config["output_dim"] == 3 and config["hidden_sizes"] == [16, 8]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--learning-rate", "-1"], "learning_rate"),
        (["--hidden_sizes", "64,abc"], "hidden_sizes"),
        (["--lr", "0.1"], "unknown hyperparameter 'lr'"),
        (["--dropout", "1.5", "--epochs", "0"], "epochs"),
    ],
)
def test_bad_hyperparameters_fail_the_job_naming_them(
    sandbox: Sandbox, datasets: dict[str, Path], args: list[str], named: str
) -> None:
    run = sandbox.train(datasets["wine"], args, name=f"bad-{abs(hash(tuple(args)))}")
    assert run.result is not None and run.result.returncode == 1
    assert run.failure is not None and named in run.failure
    assert run.failure.startswith("Invalid hyperparameters")
    assert not any(run.model_dir.iterdir())  # nothing half-written


def test_missing_channel_fails_naming_it(sandbox: Sandbox, datasets: dict[str, Path]) -> None:
    run = sandbox.train(datasets["wine"], channels=("train", "stats"), name="no-validation")
    assert run.result is not None and run.result.returncode == 1
    assert run.failure is not None and "Missing input channel 'validation'" in run.failure
    assert not any(run.model_dir.iterdir())


def test_nan_loss_fails_with_a_clear_reason(sandbox: Sandbox, datasets: dict[str, Path]) -> None:
    run = sandbox.train(datasets["diabetes"], ["--optimizer", "sgd", "--learning-rate", "10", "--epochs", "20"],
                        name="diverges")  # fmt: skip
    assert run.result is not None and run.result.returncode == 1, run.result.stdout
    assert run.failure is not None and "Training diverged" in run.failure and "learning_rate" in run.failure
    assert not any(run.model_dir.iterdir())


def test_data_without_a_feature_column_fails_naming_it(
    sandbox: Sandbox, datasets: dict[str, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    for split in ("train", "validation"):
        (broken / split).mkdir(parents=True)
        frame = pd.read_parquet(datasets["wine"] / split)
        frame.drop(columns=["alcohol"]).to_parquet(broken / split / "part-00000.parquet", index=False)
    (broken / "stats.json").write_bytes((datasets["wine"] / "stats.json").read_bytes())
    run = sandbox.train(broken, ["--epochs", "2"], name="missing-column")
    assert run.result is not None and run.result.returncode == 1
    assert run.failure is not None and "'alcohol'" in run.failure and "train data" in run.failure
