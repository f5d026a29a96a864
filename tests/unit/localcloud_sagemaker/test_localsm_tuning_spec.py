"""A tuning request validated into a search, and the search space given to optuna."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from moto.sagemaker.exceptions import ValidationError

from localcloud.sagemaker.tuning import (
    CategoricalRange,
    NumericRange,
    TuningSpec,
    distributions,
    format_hyperparameters,
)

METRICS = [{"Name": "validation:loss", "Regex": "validation:loss=([0-9.]+)"}]
BASE: dict[str, Any] = {
    "HyperParameterTuningJobName": "t",
    "HyperParameterTuningJobConfig": {
        "Strategy": "Bayesian",
        "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "validation:loss"},
        "ResourceLimits": {"MaxNumberOfTrainingJobs": 8, "MaxParallelTrainingJobs": 2},
        "ParameterRanges": {
            "IntegerParameterRanges": [
                {"Name": "epochs", "MinValue": "1", "MaxValue": "64", "ScalingType": "Logarithmic"}
            ],
            "ContinuousParameterRanges": [
                {"Name": "lr", "MinValue": "0.0001", "MaxValue": "0.1", "ScalingType": "Logarithmic"},
                {"Name": "momentum", "MinValue": "0.9", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"},
            ],
            "CategoricalParameterRanges": [{"Name": "optimizer", "Values": ["adam", "sgd"]}],
        },
        "RandomSeed": 5,
    },
    "TrainingJobDefinition": {
        "StaticHyperParameters": {"batch_size": "32"},
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File", "MetricDefinitions": METRICS},
    },
}


def request(**config: Any) -> dict[str, Any]:
    value = copy.deepcopy(BASE)
    value["HyperParameterTuningJobConfig"].update(config)
    return value


def test_a_valid_request_becomes_a_spec() -> None:
    spec = TuningSpec.from_request(request())
    assert (spec.strategy, spec.direction, spec.max_jobs, spec.max_parallel, spec.seed) == (
        "Bayesian",
        "minimize",
        8,
        2,
        5,
    )
    assert spec.ranges == (
        NumericRange("epochs", "Integer", 1, 64, "Logarithmic"),
        NumericRange("lr", "Continuous", 0.0001, 0.1, "Logarithmic"),
        NumericRange("momentum", "Continuous", 0.9, 0.999, "ReverseLogarithmic"),
        CategoricalRange("optimizer", ("adam", "sgd")),
    )
    assert spec.static_hyperparameters == {"batch_size": "32"}


def test_reverse_logarithmic_values_stay_in_range_and_are_formatted_as_strings() -> None:
    spec = TuningSpec.from_request(request())
    space = distributions(spec)
    assert (
        space["momentum"].log
        and space["momentum"].low == pytest.approx(0.001)
        and space["momentum"].high == pytest.approx(0.1)
    )
    tuned = format_hyperparameters(spec, {"epochs": 8, "lr": 0.01, "momentum": 0.001, "optimizer": "sgd"})
    assert tuned == {"epochs": "8", "lr": "0.01", "momentum": "0.999", "optimizer": "sgd"}


def test_grid_size_is_the_number_of_jobs() -> None:
    ranges = {
        "CategoricalParameterRanges": [{"Name": "a", "Values": ["1", "2", "3"]}, {"Name": "b", "Values": ["x", "y"]}]
    }
    spec = TuningSpec.from_request(
        request(Strategy="Grid", ParameterRanges=ranges, ResourceLimits={"MaxParallelTrainingJobs": 1})
    )
    assert spec.max_jobs == 6


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"Strategy": "Annealing"}, "Strategy must be one of Bayesian, Random, Hyperband, Grid"),
        ({"HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "acc"}}, "The objective metric 'acc'"),
        (
            {"HyperParameterTuningJobObjective": {"Type": "Lowest", "MetricName": "validation:loss"}},
            "Minimize or Maximize",
        ),
        ({"ResourceLimits": {"MaxParallelTrainingJobs": 1}}, "MaxNumberOfTrainingJobs must be at least 1"),
        ({"ResourceLimits": {"MaxNumberOfTrainingJobs": 3}}, "MaxParallelTrainingJobs must be at least 1"),
        (
            {
                "ParameterRanges": {
                    "ContinuousParameterRanges": [
                        {"Name": "lr", "MinValue": "0", "MaxValue": "1", "ScalingType": "Logarithmic"}
                    ]
                }
            },
            "Logarithmic scaling of 'lr' needs MinValue > 0",
        ),
        (
            {
                "ParameterRanges": {
                    "IntegerParameterRanges": [
                        {"Name": "e", "MinValue": "1", "MaxValue": "9", "ScalingType": "ReverseLogarithmic"}
                    ]
                }
            },
            "ReverseLogarithmic scaling applies only to continuous ranges",
        ),
        (
            {
                "ParameterRanges": {
                    "ContinuousParameterRanges": [
                        {"Name": "m", "MinValue": "0.5", "MaxValue": "1", "ScalingType": "ReverseLogarithmic"}
                    ]
                }
            },
            "needs 0 <= MinValue <= MaxValue < 1",
        ),
        (
            {"ParameterRanges": {"IntegerParameterRanges": [{"Name": "e", "MinValue": "9", "MaxValue": "1"}]}},
            "MinValue 9 is greater than MaxValue 1 for 'e'",
        ),
        (
            {"ParameterRanges": {"IntegerParameterRanges": [{"Name": "e", "MinValue": "one", "MaxValue": "9"}]}},
            "IntegerParameterRanges.1.MinValue must be an integer, got 'one'",
        ),
        ({"ParameterRanges": {}}, "must define at least one range"),
        ({"Strategy": "Hyperband", "TrainingJobEarlyStoppingType": "Auto"}, "must be Off with the Hyperband strategy"),
    ],
)
def test_invalid_requests_name_the_field(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as error:
        TuningSpec.from_request(request(**config))
    assert message in error.value.message


def test_static_and_tuned_hyperparameters_cannot_overlap() -> None:
    value = request()
    value["TrainingJobDefinition"]["StaticHyperParameters"]["lr"] = "0.1"
    with pytest.raises(ValidationError, match="lr are both tuned"):
        TuningSpec.from_request(value)
