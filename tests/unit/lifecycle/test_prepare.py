"""Preparing a run: the SageMaker requests the state machine sends for a dataset or a branch."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from registry_testkit import dataset

from lepton.lifecycle import JobCode, LifecycleStart, job_name, prepare
from lepton.registry.models import Project, Run, RunOverrides, TrainingConfig
from lepton.training import TuningConfig

NOW = datetime(2026, 11, 23, tzinfo=UTC)
CODE = JobCode(
    code_version="a" * 64,
    files_uri="s3://lepton-data/code/jobs/aaa/files/",
    sourcedir_uri="s3://lepton-data/code/jobs/aaa/sourcedir.tar.gz",
)
TUNING = TuningConfig(
    strategy="Random",
    objective_metric="validation:accuracy",
    objective_type="Maximize",
    max_jobs=6,
    max_parallel_jobs=2,
    random_seed=7,
    ranges={
        "learning_rate": {"type": "continuous", "min": 0.0001, "max": 0.1, "scaling": "Logarithmic"},
        "hidden_sizes": {"type": "categorical", "values": ["32", "64,32"]},
        "epochs": {"type": "integer", "min": 5, "max": 40},
    },
)


def project(tuning: TuningConfig | None = None) -> Project:
    return Project(
        name="wine",
        training=TrainingConfig(
            hyperparameters={"epochs": 20, "learning_rate": 0.01}, max_runtime_s=1800, tuning=tuning
        ),
        members={"arn:aws:iam::123456789012:user/alice": "admin"},
        created_at=NOW,
        created_by="arn:aws:iam::123456789012:user/alice",
    )


def run(**changes) -> Run:
    fields = {
        "project": "wine",
        "run_id": "run-19b7c3d2e1a4f5b6c7d8",
        "branch": "main",
        "base_version": None,
        "overrides": RunOverrides(),
        "hyperparameters": {"epochs": 20, "learning_rate": 0.01},
        "dataset_id": dataset("wine", 1).dataset_id,
        "code_version": None,
        "created_at": NOW,
        "created_by": "lepton:lifecycle",
        "updated_at": NOW,
    }
    return Run(**{**fields, **changes})


def test_a_plain_run_trains_with_the_project_hyperparameters_on_the_curated_splits():
    ds = dataset("wine", 1)
    prepared = prepare(project(), ds, run(), CODE, "lepton-data", "us-east-1")
    out = prepared.for_state_machine()
    assert out["tuning"] is None  # the Choice state tests IsNull
    assert out["hyperparameters"]["epochs"] == "20" and out["hyperparameters"]["learning_rate"] == "0.01"
    assert json.loads(out["hyperparameters"]["sagemaker_program"]) == "train.py"
    assert json.loads(out["hyperparameters"]["sagemaker_submit_directory"]) == CODE.sourcedir_uri
    channels = {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3Uri"] for c in out["input_data_config"]}
    assert channels == {
        "train": ds.curated_prefix + "train/",
        "validation": ds.curated_prefix + "validation/",
        "stats": ds.curated_prefix + "stats.json",
    }
    assert out["test_uri"] == ds.curated_prefix + "test/"
    assert out["max_runtime_seconds"] == 1800
    assert out["code_version"] == CODE.code_version and out["code_uri"] == CODE.files_uri
    assert out["output_path"] == "s3://lepton-data/models/wine/run-19b7c3d2e1a4f5b6c7d8/training/"
    assert "/opt/ml/processing/model" in out["evaluation_arguments"]
    assert {t["Key"]: t["Value"] for t in out["tags"]}["lepton:dataset"] == ds.dataset_id


def test_a_project_that_tunes_gets_a_tuning_request_without_the_tuned_hyperparameters():
    prepared = prepare(project(TUNING), dataset("wine", 1), run(), CODE, "lepton-data", "us-east-1")
    assert prepared.tuning is not None
    config = prepared.tuning.config
    assert config["Strategy"] == "Random" and config["RandomSeed"] == 7
    assert config["HyperParameterTuningJobObjective"] == {"Type": "Maximize", "MetricName": "validation:accuracy"}
    assert config["ResourceLimits"] == {"MaxParallelTrainingJobs": 2, "MaxNumberOfTrainingJobs": 6}
    ranges = config["ParameterRanges"]
    assert ranges["ContinuousParameterRanges"] == [
        {"Name": "learning_rate", "MinValue": "0.0001", "MaxValue": "0.1", "ScalingType": "Logarithmic"}
    ]
    assert ranges["IntegerParameterRanges"][0] == {
        "Name": "epochs",
        "MinValue": "5",
        "MaxValue": "40",
        "ScalingType": "Auto",
    }
    assert "learning_rate" not in prepared.hyperparameters and "epochs" not in prepared.hyperparameters
    assert len(prepared.tuning.job_name) <= 32


def test_a_branch_with_overrides_trains_exactly_what_it_asked_for():
    branch = run(base_version=3, branch="wide", overrides=RunOverrides(hyperparameters={"hidden_sizes": "256,128"}),
                 hyperparameters={"epochs": 20, "learning_rate": 0.01, "hidden_sizes": "256,128"})  # fmt: skip
    prepared = prepare(project(TUNING), dataset("wine", 1), branch, CODE, "lepton-data", "us-east-1")
    assert prepared.tuning is None
    assert json.loads(prepared.hyperparameters["hidden_sizes"]) == "256,128"
    assert (prepared.branch, prepared.base_version) == ("wide", 3)


def test_job_names_fit_sagemakers_rules_with_long_project_names():
    long_project = "a-very-long-project-name-that-goes-on-x1"
    for limit in (32, 63):
        name = job_name(long_project, "eval", "19b7c3d2e1a4f5b6c7d8", limit=limit)
        assert len(name) <= limit
        assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name)
        assert name.endswith("19b7c3d2e1a4f5b6c7d8")


def test_grid_needs_categorical_ranges_and_tuning_validates_ranges():
    with pytest.raises(ValidationError, match="Grid strategy takes categorical ranges only"):
        TuningConfig(strategy="Grid", ranges={"lr": {"type": "continuous", "min": 0.1, "max": 1.0}})
    with pytest.raises(ValidationError, match="Logarithmic scaling needs min > 0"):
        TuningConfig(ranges={"lr": {"type": "continuous", "min": 0, "max": 1.0, "scaling": "Logarithmic"}})
    with pytest.raises(ValidationError, match=r"min 2\.0 must be below max 1\.0"):
        TuningConfig(ranges={"n": {"type": "integer", "min": 2, "max": 1}})
    grid = TuningConfig(strategy="Grid", ranges={"optimizer": {"type": "categorical", "values": ["adam", "sgd"]}})
    assert "MaxNumberOfTrainingJobs" not in grid.to_sagemaker()["ResourceLimits"]


def test_the_execution_input_names_the_project():
    assert LifecycleStart.model_validate({"project": "wine", "dataset_id": "ds-0123456789abcdef0123", "x": 1})
    with pytest.raises(ValidationError, match="project"):
        LifecycleStart.model_validate({"dataset_id": "ds-0123456789abcdef0123"})
