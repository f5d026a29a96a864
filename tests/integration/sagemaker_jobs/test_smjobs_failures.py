"""Issue 5, acceptance 3, through the local SageMaker: a bad hyperparameter, a missing channel and a
NaN loss each end the training job Failed with a FailureReason that names the culprit; and through
the lifecycle state machine, its Catch records the run FAILED with that cause and the execution
fails with LifecycleFailed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from lifecycle_kit import QUICK_TRAINING, Execution, Lifecycle, single_threaded_jobs
from smjobs_kit import Dataset, JobsBench, log_lines

pytestmark = pytest.mark.slow

DIVERGING = {"optimizer": "sgd", "learning_rate": 10, "epochs": 20, "patience": 20}


@pytest.fixture(scope="module")
def datasets(bench: JobsBench, curated_data: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dataset]:
    out = {}
    for name in ("wine", "diabetes"):
        frame, target, task, categorical = curated_data.sklearn_frame(name)
        local = curated_data.write_curated(
            tmp_path_factory.mktemp(name), frame, target=target, task=task, categorical=categorical, project=name
        )
        out[name] = bench.upload_curated(local, name)
    return out


def assert_failed_before_writing_a_model(bench: JobsBench, job: dict[str, Any]) -> str:
    assert job["TrainingJobStatus"] == "Failed"
    assert job["SecondaryStatus"] == "Failed"
    assert "ModelArtifacts" not in job or not job["ModelArtifacts"]
    name = job["TrainingJobName"]
    assert not [k for k in bench.keys(f"models/{name}/") if k.endswith("model.tar.gz")]
    reason: str = job["FailureReason"]
    assert reason.startswith("AlgorithmError: ")
    assert len(reason) <= 1024
    return reason


def test_a_bad_hyperparameter_fails_the_job_naming_it(bench: JobsBench, datasets: dict[str, Dataset]) -> None:
    job = bench.train("bad-hps", datasets["wine"], learning_rate=-1, lr=0.1)
    reason = assert_failed_before_writing_a_model(bench, job)
    assert reason.startswith("AlgorithmError: Invalid hyperparameters")
    assert "'learning_rate' = '-1'" in reason
    assert "unknown hyperparameter 'lr'" in reason
    # the job stopped before reading any data: no epoch was logged
    assert not [line for line in log_lines(bench.cloud, "/aws/sagemaker/TrainingJobs", "bad-hps") if "epoch=" in line]


def test_a_missing_channel_fails_the_job_naming_it(bench: JobsBench, datasets: dict[str, Dataset]) -> None:
    job = bench.train("no-validation", datasets["wine"], channels=("train", "stats"), epochs=2)
    reason = assert_failed_before_writing_a_model(bench, job)
    assert reason.startswith("AlgorithmError: Missing input channel 'validation'")
    assert "train, validation and stats" in reason


def test_a_nan_loss_fails_the_job_saying_what_to_change(bench: JobsBench, datasets: dict[str, Dataset]) -> None:
    job = bench.train("diverges", datasets["diabetes"], **DIVERGING)
    reason = assert_failed_before_writing_a_model(bench, job)
    assert reason.startswith("AlgorithmError: Training diverged: the training loss became nan in epoch")
    assert "Lower learning_rate" in reason
    # it failed in the training loop, after the data was read and the model built
    logs = log_lines(bench.cloud, "/aws/sagemaker/TrainingJobs", "diverges")
    assert any(line.startswith("device: cpu; rows: train=") for line in logs)
    assert "model archive written" not in "\n".join(logs)


# -- the same failures caught by the lifecycle state machine ------------------------------------------
@pytest.fixture(scope="module")
def lifecycle(lepton: Any) -> Iterator[Lifecycle]:
    with single_threaded_jobs():
        yield Lifecycle(lepton)


def assert_caught_at_train(lifecycle: Lifecycle, execution: Execution, project: str) -> tuple[dict, dict]:
    """The execution failed with LifecycleFailed after MarkFailed recorded the Train failure."""
    assert execution.status == "FAILED", execution.description
    assert execution.description["error"] == "LifecycleFailed"
    assert execution.states == ["PrepareTraining", "ChooseTraining", "Train", "MarkFailed", "Failed"]
    (failure,) = execution.task_failures()
    assert failure["error"] == "States.TaskFailed"
    described = json.loads(failure["cause"])  # the failed job's DescribeTrainingJob
    run = lifecycle.run(project, execution.run_id)
    assert run["status"] == "FAILED"
    assert run["failure"]["step"] == "Train"
    assert run["failure"]["error"] == "States.TaskFailed"
    # the cause recorded is what a person reads: the job, its status and its FailureReason
    cause = run["failure"]["cause"]
    assert cause == f"{described['TrainingJobName']} Failed: {described['FailureReason']}"
    assert run["version"] is None and lifecycle.versions(project) == []
    marked = execution.mark_failed_output()
    assert marked == {"project": project, "run_id": run["run_id"], "run_status": "FAILED", "version": None,
                      "version_status": None, "error": "States.TaskFailed"}  # fmt: skip
    return described, run


@pytest.fixture(scope="module")
def wine_project(lifecycle: Lifecycle) -> dict[str, Any]:
    """wine.csv uploaded to a project whose training configuration has a bad hyperparameter: the
    ingest function starts the lifecycle, whose Train state fails."""
    lifecycle.create_project("wine-bad", {"hyperparameters": {**QUICK_TRAINING, "learning_rate": -1}})
    dataset_id = lifecycle.upload("wine-bad", "wine.csv")
    execution = lifecycle.finish(lifecycle.ingest_execution("wine-bad", dataset_id))
    return {"dataset_id": dataset_id, "execution": execution}


def test_the_lifecycle_catches_a_bad_hyperparameter(lifecycle: Lifecycle, wine_project: dict[str, Any]) -> None:
    described, run = assert_caught_at_train(lifecycle, wine_project["execution"], "wine-bad")
    assert described["FailureReason"].startswith("AlgorithmError: Invalid hyperparameters")
    assert "'learning_rate' = '-1'" in run["failure"]["cause"]


def test_the_lifecycle_catches_a_removed_input(lifecycle: Lifecycle, wine_project: dict[str, Any]) -> None:
    """The validation split deleted from the curated dataset: the training job cannot download its channel."""
    dataset_id = wine_project["dataset_id"]
    lifecycle.set_training("wine-bad", {"hyperparameters": QUICK_TRAINING})
    lifecycle.remove_split("wine-bad", dataset_id, "validation")
    assert lifecycle.curated_keys("wine-bad", dataset_id, "validation") == []
    execution = lifecycle.finish(lifecycle.start("wine-bad-no-validation", "wine-bad", dataset_id))
    described, _ = assert_caught_at_train(lifecycle, execution, "wine-bad")
    assert described["FailureReason"].startswith("ClientError: Data download failed: No S3 objects found under")
    assert f"/curated/wine-bad/{dataset_id}/validation/" in described["FailureReason"]


def test_the_lifecycle_catches_a_nan_loss(lifecycle: Lifecycle) -> None:
    lifecycle.create_project("diabetes-nan", {"hyperparameters": DIVERGING})
    dataset_id = lifecycle.upload("diabetes-nan", "diabetes.csv")
    execution = lifecycle.finish(lifecycle.ingest_execution("diabetes-nan", dataset_id))
    described, run = assert_caught_at_train(lifecycle, execution, "diabetes-nan")
    assert described["FailureReason"].startswith("AlgorithmError: Training diverged")
    assert "Lower learning_rate" in run["failure"]["cause"]
