"""CreateHyperParameterTuningJob runs its trials as training jobs and reports the best by the objective."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from aws_kit import channel, wait_until
from botocore.exceptions import ClientError
from smlocal_helpers import BUCKET, ROLE, Aws, algorithm, script_hyperparameters

TRIAL_NAME = re.compile(r"^(?P<tuning>[a-z0-9-]+)-(?P<index>\d{3})-[0-9a-f]{8}$")


def tuning_request(
    name: str,
    strategy: str,
    *,
    ranges: dict[str, Any] | None = None,
    max_jobs: int | None = 6,
    parallel: int = 2,
    seed: int | None = 42,
    static: dict[str, str] | None = None,
    objective: str = "validation:loss",
) -> dict[str, Any]:
    limits: dict[str, int] = {"MaxParallelTrainingJobs": parallel}
    if max_jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = max_jobs
    config: dict[str, Any] = {
        "Strategy": strategy,
        "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": objective},
        "ResourceLimits": limits,
        "ParameterRanges": ranges
        or {
            "ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "Linear"}],
            "IntegerParameterRanges": [{"Name": "epochs", "MinValue": "1", "MaxValue": "4", "ScalingType": "Auto"}],
            "CategoricalParameterRanges": [{"Name": "optimizer", "Values": ["adam", "sgd"]}],
        },
        "TrainingJobEarlyStoppingType": "Off",
    }
    if seed is not None:
        config["RandomSeed"] = seed
    return {
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": config,
        "TrainingJobDefinition": {
            "StaticHyperParameters": static if static is not None else script_hyperparameters(learning_rate=0.01),
            "AlgorithmSpecification": algorithm(),
            "RoleArn": ROLE,
            "InputDataConfig": [channel("train", f"s3://{BUCKET}/datasets/ds-1/train/")],
            "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/tuning"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
            "StoppingCondition": {"MaxRuntimeInSeconds": 120},
        },
    }


def run_tuning(aws: Aws, request: dict[str, Any], timeout: float = 90) -> dict[str, Any]:
    name = request["HyperParameterTuningJobName"]
    aws.sagemaker.create_hyper_parameter_tuning_job(**request)

    def done() -> dict[str, Any] | None:
        job: dict[str, Any] = aws.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
        return job if job["HyperParameterTuningJobStatus"] in ("Completed", "Failed", "Stopped") else None

    result: dict[str, Any] = wait_until(done, timeout)
    return result


def trials(aws: Aws, name: str) -> list[dict[str, Any]]:
    summaries: list[dict[str, Any]] = []
    token: dict[str, str] = {}
    while True:
        page = aws.sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name, SortBy="Name", SortOrder="Ascending", MaxResults=4, **token
        )
        summaries += page["TrainingJobSummaries"]
        if "NextToken" not in page:
            return summaries
        token = {"NextToken": page["NextToken"]}


def toy_loss(hps: dict[str, str]) -> float:
    """The toy trainer's final validation:loss for the tuned values (learning_rate fixed at 0.01)."""
    x, epochs = float(hps["x"]), int(hps["epochs"])
    return (x - 0.3) ** 2 + (0.05 if hps["optimizer"] == "sgd" else 0.0) + 1.0 / epochs


@pytest.mark.parametrize("strategy", ["Random", "Bayesian"])
def test_tuning_runs_trials_and_picks_the_best_by_the_objective(aws: Aws, strategy: str) -> None:
    name = f"tune-{strategy.lower()}"
    job = run_tuning(aws, tuning_request(name, strategy))

    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    assert job["TrainingJobStatusCounters"] == {
        "Completed": 6,
        "InProgress": 0,
        "RetryableError": 0,
        "NonRetryableError": 0,
        "Stopped": 0,
    }
    assert job["ObjectiveStatusCounters"] == {"Succeeded": 6, "Pending": 0, "Failed": 0}
    summaries = trials(aws, name)
    assert [int(TRIAL_NAME.match(s["TrainingJobName"])["index"]) for s in summaries] == [1, 2, 3, 4, 5, 6]  # type: ignore[index]
    assert all(TRIAL_NAME.match(s["TrainingJobName"])["tuning"] == name for s in summaries)  # type: ignore[index]
    for summary in summaries:
        tuned = summary["TunedHyperParameters"]
        assert set(tuned) == {"x", "epochs", "optimizer"}
        assert 0.0 <= float(tuned["x"]) <= 1.0 and 1 <= int(tuned["epochs"]) <= 4
        metric = summary["FinalHyperParameterTuningJobObjectiveMetric"]
        assert metric["MetricName"] == "validation:loss"
        assert metric["Value"] == pytest.approx(toy_loss(tuned), abs=1e-5)

    best = job["BestTrainingJob"]
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in summaries]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == min(values)
    assert (
        best["TrainingJobName"]
        == min(summaries, key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])["TrainingJobName"]
    )
    assert best["TuningJobName"] == name
    assert best["ObjectiveStatus"] == "Succeeded"

    # Each trial is a real training job with the static and the tuned hyperparameters.
    trial = aws.sagemaker.describe_training_job(TrainingJobName=best["TrainingJobName"])
    assert trial["TuningJobArn"] == job["HyperParameterTuningJobArn"]
    assert trial["HyperParameters"]["learning_rate"] == "0.01"
    assert trial["HyperParameters"]["x"] == best["TunedHyperParameters"]["x"]
    assert (
        trial["ModelArtifacts"]["S3ModelArtifacts"]
        == f"s3://{BUCKET}/tuning/{best['TrainingJobName']}/output/model.tar.gz"
    )

    by_objective = aws.sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, SortBy="FinalObjectiveMetricValue", SortOrder="Ascending"
    )["TrainingJobSummaries"]
    assert by_objective[0]["TrainingJobName"] == best["TrainingJobName"]


def test_bayesian_tuning_is_reproducible_with_the_same_seed(aws: Aws) -> None:
    def tuned_values(name: str, seed: int) -> tuple[list[dict[str, str]], dict[str, str]]:
        job = run_tuning(aws, tuning_request(name, "Bayesian", seed=seed))
        assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
        return [s["TunedHyperParameters"] for s in trials(aws, name)], job["BestTrainingJob"]["TunedHyperParameters"]

    first, first_best = tuned_values("bayes-a", 7)
    second, second_best = tuned_values("bayes-b", 7)
    other, _ = tuned_values("bayes-c", 8)

    assert len(first) == 6
    assert first == second
    assert first_best == second_best
    assert other != first, "a different RandomSeed proposes different hyperparameters"


def test_grid_tuning_runs_every_combination_once(aws: Aws) -> None:
    ranges = {
        "CategoricalParameterRanges": [
            {"Name": "optimizer", "Values": ["adam", "sgd"]},
            {"Name": "x", "Values": ["0.0", "0.3", "0.9"]},
        ]
    }
    request = tuning_request("tune-grid", "Grid", ranges=ranges, max_jobs=None, parallel=3)
    request["TrainingJobDefinition"]["StaticHyperParameters"] = script_hyperparameters(learning_rate=0.01, epochs=2)
    job = run_tuning(aws, request)

    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    combinations = sorted(
        (s["TunedHyperParameters"]["optimizer"], s["TunedHyperParameters"]["x"]) for s in trials(aws, "tune-grid")
    )
    assert combinations == sorted(itertools.product(["adam", "sgd"], ["0.0", "0.3", "0.9"]))
    assert job["BestTrainingJob"]["TunedHyperParameters"] == {"optimizer": "adam", "x": "0.3"}


def test_a_tuning_job_whose_trials_all_fail_is_failed_with_their_reason(aws: Aws) -> None:
    request = tuning_request("tune-fails", "Random", max_jobs=2, static=script_hyperparameters(learning_rate=-1))
    job = run_tuning(aws, request)

    assert job["HyperParameterTuningJobStatus"] == "Failed"
    assert job["TrainingJobStatusCounters"]["NonRetryableError"] == 2
    assert job["ObjectiveStatusCounters"] == {"Succeeded": 0, "Pending": 0, "Failed": 2}
    assert "none completed with it" in job["FailureReason"]
    assert "Bad hyperparameter learning_rate: it must be > 0" in job["FailureReason"]
    assert "BestTrainingJob" not in job


def test_stopping_a_tuning_job_stops_its_trials(aws: Aws) -> None:
    request = tuning_request("tune-stop", "Random", max_jobs=4, parallel=2)
    request["TrainingJobDefinition"]["StaticHyperParameters"] = script_hyperparameters(mode="sleep", sleep=30)
    aws.sagemaker.create_hyper_parameter_tuning_job(**request)
    wait_until(lambda: len(trials(aws, "tune-stop")) == 2)
    aws.sagemaker.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-stop")

    job = wait_until(
        lambda: (
            (d := aws.sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-stop"))[
                "HyperParameterTuningJobStatus"
            ]
            == "Stopped"
            and d
        ),
        timeout=60,
    )
    assert job["TrainingJobStatusCounters"]["Stopped"] == 2
    assert [s["TrainingJobStatus"] for s in trials(aws, "tune-stop")] == ["Stopped", "Stopped"]
    with pytest.raises(ClientError, match="the tuning job is in status Stopped"):
        aws.sagemaker.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="tune-stop")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r["HyperParameterTuningJobConfig"]["HyperParameterTuningJobObjective"].update(MetricName="auc"),
            "The objective metric 'auc' (HyperParameterTuningJobObjective.MetricName) is not defined",
        ),
        (
            lambda r: r["HyperParameterTuningJobConfig"].update(Strategy="Grid"),
            "The Grid strategy supports only categorical parameter ranges; epochs, x are numeric",
        ),
        (
            lambda r: r["TrainingJobDefinition"]["StaticHyperParameters"].update(x="0.5"),
            "The hyperparameters x are both tuned (ParameterRanges) and static",
        ),
        (
            lambda r: r["TrainingJobDefinition"]["OutputDataConfig"].update(S3OutputPath="bucket/path"),
            "TrainingJobDefinition: OutputDataConfig.S3OutputPath must be an s3://bucket/key URI",
        ),
    ],
)
def test_invalid_tuning_requests_are_400s(aws: Aws, change: Any, message: str) -> None:
    request = tuning_request("tune-invalid", "Random")
    change(request)
    with pytest.raises(ClientError) as error:
        aws.sagemaker.create_hyper_parameter_tuning_job(**request)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert message in error.value.response["Error"]["Message"]


def test_unknown_tuning_job_is_resource_not_found(aws: Aws) -> None:
    with pytest.raises(ClientError) as error:
        aws.sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="nope")
    assert error.value.response["Error"]["Code"] == "ResourceNotFound"


def test_auto_early_stopping_stops_trials_worse_than_the_median(aws: Aws) -> None:
    ranges = {"CategoricalParameterRanges": [{"Name": "x", "Values": ["0.3", "5.0"]}]}
    request = tuning_request("tune-early", "Random", ranges=ranges, max_jobs=6, parallel=1, seed=11)
    request["HyperParameterTuningJobConfig"]["TrainingJobEarlyStoppingType"] = "Auto"
    static = script_hyperparameters(learning_rate=0.01, epochs=3, mode="slow_epochs", sleep=0.3)
    request["TrainingJobDefinition"]["StaticHyperParameters"] = static
    job = run_tuning(aws, request)

    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    summaries = trials(aws, "tune-early")
    stopped = [s for s in summaries if s["TrainingJobStatus"] == "Stopped"]
    assert stopped, "no trial was stopped early"
    # Only the far worse value is stopped early; its objective so far still counts as reported.
    assert {s["TunedHyperParameters"]["x"] for s in stopped} == {"5.0"}
    assert all(s["ObjectiveStatus"] == "Succeeded" for s in stopped)
    assert job["TrainingJobStatusCounters"]["Stopped"] == len(stopped)
    assert job["BestTrainingJob"]["TunedHyperParameters"] == {"x": "0.3"}
    assert job["BestTrainingJob"]["TrainingJobStatus"] == "Completed"


def test_hyperband_stops_weak_trials_at_its_rungs(aws: Aws) -> None:
    ranges = {"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "3"}]}
    request = tuning_request("tune-hyperband", "Hyperband", ranges=ranges, max_jobs=6, parallel=1, seed=5)
    request["HyperParameterTuningJobConfig"]["StrategyConfig"] = {
        "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 6}
    }
    static = script_hyperparameters(learning_rate=0.01, epochs=6, mode="slow_epochs", sleep=0.1)
    request["TrainingJobDefinition"]["StaticHyperParameters"] = static
    job = run_tuning(aws, request)

    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    summaries = trials(aws, "tune-hyperband")
    assert len(summaries) == 6
    stopped = [s for s in summaries if s["TrainingJobStatus"] == "Stopped"]
    completed = [s for s in summaries if s["TrainingJobStatus"] == "Completed"]
    assert stopped and completed
    best_completed = min(completed, key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    assert job["BestTrainingJob"]["TrainingJobName"] == best_completed["TrainingJobName"]
    # A stopped trial stopped at a rung, before its last epoch.
    for summary in stopped:
        epochs = {
            m["MetricName"]: m["Value"]
            for m in aws.sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])[
                "FinalMetricDataList"
            ]
        }["epoch"]
        assert epochs < 6


def test_target_objective_value_ends_the_search_early(aws: Aws) -> None:
    request = tuning_request("tune-target", "Random", max_jobs=6, parallel=1)
    request["HyperParameterTuningJobConfig"]["TuningJobCompletionCriteria"] = {"TargetObjectiveMetricValue": 10.0}
    job = run_tuning(aws, request)

    assert job["HyperParameterTuningJobStatus"] == "Completed"
    assert len(trials(aws, "tune-target")) == 1, "every toy loss is below 10: the first trial reaches the target"
    assert job["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] <= 10.0
