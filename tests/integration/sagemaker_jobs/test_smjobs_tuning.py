"""Issue 5, acceptance 2, through the local SageMaker: hyperparameter tuning jobs with the Random and
Bayesian strategies run six trials each of the real train.py, pick the best trial by the objective,
and give the same trials and the same best when run again with the same RandomSeed."""

from __future__ import annotations

import math
from typing import Any

import pytest
from smjobs_kit import Dataset, JobsBench, final_metrics

pytestmark = pytest.mark.slow

OBJECTIVE = "validation:loss"
TRIALS = 6
RANGES = {
    "ContinuousParameterRanges": [
        {"Name": "learning_rate", "MinValue": "0.001", "MaxValue": "0.1", "ScalingType": "Logarithmic"}
    ],
    "IntegerParameterRanges": [{"Name": "batch_size", "MinValue": "8", "MaxValue": "64", "ScalingType": "Linear"}],
    "CategoricalParameterRanges": [{"Name": "hidden_sizes", "Values": ["8", "32,16"]}],
}
# few epochs: the point is the search, not the model
STATIC = {"epochs": 6, "patience": 6, "seed": 3}


def tuning_config(strategy: str, seed: int) -> dict[str, Any]:
    return {
        "Strategy": strategy,
        "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": OBJECTIVE},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": TRIALS, "MaxParallelTrainingJobs": 2},
        "ParameterRanges": RANGES,
        "TrainingJobEarlyStoppingType": "Off",
        "RandomSeed": seed,
    }


@pytest.fixture(scope="module")
def dataset(bench: JobsBench, curated_data, tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    frame, target, task, _ = curated_data.sklearn_frame("wine")
    local = curated_data.write_curated(tmp_path_factory.mktemp("curated"), frame, target=target, task=task)
    return bench.upload_curated(local, "wine")


@pytest.fixture(scope="module")
def runs(bench: JobsBench, dataset: Dataset) -> dict[str, list[dict[str, Any]]]:
    """Two tuning jobs per strategy with the same seed, all started at once: the local SageMaker runs
    two trials at a time whichever job they belong to (Bayesian batches leave a slot idle otherwise)."""
    names = {strategy: [f"wine-{strategy.lower()}-{i}" for i in (1, 2)] for strategy in ("Random", "Bayesian")}
    for strategy, pair in names.items():
        for name in pair:
            bench.start_tuning(name, dataset, tuning_config(strategy, seed=11), STATIC)
    return {
        strategy: [{"job": bench.wait("tuning", name, timeout=900), "trials": bench.trials(name)} for name in pair]
        for strategy, pair in names.items()
    }


@pytest.fixture(scope="module")
def random_runs(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return runs["Random"]


@pytest.fixture(scope="module")
def bayesian_runs(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return runs["Bayesian"]


def tuned(trial: dict[str, Any]) -> dict[str, str]:
    return {k: trial["HyperParameters"][k] for k in ("learning_rate", "batch_size", "hidden_sizes")}


def check_tuning_run(bench: JobsBench, run: dict[str, Any]) -> None:
    job, trials = run["job"], run["trials"]
    assert job["HyperParameterTuningJobStatus"] == "Completed", job.get("FailureReason")
    assert len(trials) == TRIALS
    assert job["TrainingJobStatusCounters"]["Completed"] == TRIALS
    assert job["ObjectiveStatusCounters"]["Succeeded"] == TRIALS
    for trial in trials:
        # each trial is the real train.py with the static and the tuned hyperparameters
        assert trial["TrainingJobStatus"] == "Completed", trial.get("FailureReason")
        assert trial["HyperParameters"]["sagemaker_program"] == '"train.py"'
        assert trial["HyperParameters"]["epochs"] == "6"
        assert 0.001 <= float(trial["HyperParameters"]["learning_rate"]) <= 0.1
        assert 8 <= int(trial["HyperParameters"]["batch_size"]) <= 64
        assert trial["HyperParameters"]["hidden_sizes"] in ("8", "32,16")
        assert trial["ModelArtifacts"]["S3ModelArtifacts"].endswith(f"/{trial['TrainingJobName']}/output/model.tar.gz")
        assert {"validation:loss", "validation:accuracy", "epoch"} <= set(final_metrics(trial))
    # the best is the trial with the lowest final validation:loss, as FinalMetricDataList records it
    losses = {t["TrainingJobName"]: final_metrics(t)[OBJECTIVE] for t in trials}
    best_name = min(losses, key=lambda name: losses[name])
    best = job["BestTrainingJob"]
    assert best["TrainingJobName"] == best_name
    assert best["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "Type": "Minimize",
        "MetricName": OBJECTIVE,
        "Value": losses[best_name],
    }
    (best_trial,) = [t for t in trials if t["TrainingJobName"] == best_name]
    assert best["TunedHyperParameters"] == tuned(best_trial)
    assert len(set(losses.values())) > 1, "the trials should not all score the same"
    assert all(math.isfinite(v) for v in losses.values())


def check_reproducible(runs: list[dict[str, Any]]) -> None:
    first, second = runs
    assert [tuned(t) for t in first["trials"]] == [tuned(t) for t in second["trials"]]
    assert [final_metrics(t)[OBJECTIVE] for t in first["trials"]] == [
        final_metrics(t)[OBJECTIVE] for t in second["trials"]
    ]
    best_a, best_b = first["job"]["BestTrainingJob"], second["job"]["BestTrainingJob"]
    assert best_a["TunedHyperParameters"] == best_b["TunedHyperParameters"]
    objective = "FinalHyperParameterTuningJobObjectiveMetric"
    assert best_a[objective] == best_b[objective]
    # the same position in the trial order, under a different name
    position = [t["TrainingJobName"] for t in first["trials"]].index(best_a["TrainingJobName"])
    assert second["trials"][position]["TrainingJobName"] == best_b["TrainingJobName"]


def test_random_search_runs_six_trials_of_train_py_and_picks_the_best(
    bench: JobsBench, random_runs: list[dict[str, Any]]
) -> None:
    check_tuning_run(bench, random_runs[0])
    assert len({tuple(tuned(t).items()) for t in random_runs[0]["trials"]}) == TRIALS


def test_random_search_is_reproducible_with_the_same_seed(bench: JobsBench, random_runs: list[dict[str, Any]]) -> None:
    check_tuning_run(bench, random_runs[1])
    check_reproducible(random_runs)


def test_bayesian_search_runs_six_trials_of_train_py_and_picks_the_best(
    bench: JobsBench, bayesian_runs: list[dict[str, Any]], random_runs: list[dict[str, Any]]
) -> None:
    check_tuning_run(bench, bayesian_runs[0])
    # the Gaussian process proposes its own points once its random start-up trials are told
    assert [tuned(t) for t in bayesian_runs[0]["trials"]] != [tuned(t) for t in random_runs[0]["trials"]]


def test_bayesian_search_is_reproducible_with_the_same_seed(
    bench: JobsBench, bayesian_runs: list[dict[str, Any]]
) -> None:
    check_tuning_run(bench, bayesian_runs[1])
    check_reproducible(bayesian_runs)
