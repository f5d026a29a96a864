"""Metrics parsed from the log with MetricDefinitions."""

from __future__ import annotations

from datetime import datetime

import pytest

from localcloud.sagemaker.metrics import MetricDefinitionError, MetricParser

REGEX = "=([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?|nan|inf)"
T = datetime(2026, 1, 1)


def test_last_finite_value_of_each_metric_is_kept() -> None:
    parser = MetricParser([{"Name": n, "Regex": n + REGEX} for n in ("train:loss", "validation:accuracy")])
    for line in ["train:loss=0.9", "validation:accuracy=0.5", "noise", "train:loss=1.5e-1", "train:loss=nan"]:
        parser.feed(line, T)
    assert {m["MetricName"]: m["Value"] for m in parser.final_metric_data_list()} == {
        "train:loss": 0.15,
        "validation:accuracy": 0.5,
    }


def test_samples_carry_a_step_per_metric() -> None:
    parser = MetricParser([{"Name": "loss", "Regex": "loss" + REGEX}])
    steps = [s.step for line in ["loss=3", "x", "loss=2", "loss=1"] for s in parser.feed(line, T)]
    assert steps == [1, 2, 3]


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"Name": "loss", "Regex": "loss=[0-9]+"}, "must have a capture group"),
        ({"Name": "loss", "Regex": "loss=(["}, "is not a valid regex"),
        ({"Name": "", "Regex": "x=(1)"}, "MetricDefinitions.1.Name must be a non-empty string"),
    ],
)
def test_unusable_definitions_are_named(definition: dict[str, str], message: str) -> None:
    with pytest.raises(MetricDefinitionError, match=message):
        MetricParser([definition])
