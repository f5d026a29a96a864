"""Training metrics parsed from the job's log with its MetricDefinitions, as SageMaker does."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class MetricDefinitionError(ValueError):
    """A MetricDefinitions entry is unusable; the message names it."""


@dataclass(frozen=True)
class MetricSample:
    name: str
    value: float
    timestamp: datetime
    step: int  # 1 for the first time this metric was seen in the log, then 2, 3, ...


def compile_definitions(definitions: Iterable[Mapping[str, Any]] | None) -> list[tuple[str, re.Pattern[str]]]:
    """Validate and compile MetricDefinitions ([{"Name", "Regex"}]); SageMaker requires one capture group."""
    compiled: list[tuple[str, re.Pattern[str]]] = []
    for index, definition in enumerate(definitions or []):
        name = definition.get("Name")
        regex = definition.get("Regex")
        where = f"AlgorithmSpecification.MetricDefinitions.{index + 1}"
        if not name or not isinstance(name, str):
            raise MetricDefinitionError(f"{where}.Name must be a non-empty string")
        if not regex or not isinstance(regex, str):
            raise MetricDefinitionError(f"{where}.Regex for metric '{name}' must be a non-empty string")
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            raise MetricDefinitionError(f"{where}.Regex for metric '{name}' is not a valid regex: {exc}") from exc
        if pattern.groups < 1:
            raise MetricDefinitionError(
                f"{where}.Regex for metric '{name}' must have a capture group for the metric value"
            )
        compiled.append((name, pattern))
    return compiled


class MetricParser:
    """Feeds on log lines; keeps the last finite value of each metric (SageMaker's FinalMetricDataList)."""

    def __init__(self, definitions: Iterable[Mapping[str, Any]] | None) -> None:
        self._patterns = compile_definitions(definitions)
        self._last: dict[str, MetricSample] = {}
        self._counts: dict[str, int] = {}

    def feed(self, line: str, timestamp: datetime) -> list[MetricSample]:
        samples: list[MetricSample] = []
        for name, pattern in self._patterns:
            for match in pattern.finditer(line):
                try:
                    value = float(match.group(1))
                except (TypeError, ValueError):
                    continue
                if not math.isfinite(value):
                    # CloudWatch (where SageMaker keeps metrics) stores no NaN or infinity.
                    continue
                self._counts[name] = self._counts.get(name, 0) + 1
                sample = MetricSample(name=name, value=value, timestamp=timestamp, step=self._counts[name])
                self._last[name] = sample
                samples.append(sample)
        return samples

    def final(self) -> list[MetricSample]:
        return list(self._last.values())

    def final_metric_data_list(self) -> list[dict[str, Any]]:
        return [{"MetricName": s.name, "Value": s.value, "Timestamp": s.timestamp} for s in self.final()]
