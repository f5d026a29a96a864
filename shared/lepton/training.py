"""A project's hyperparameter tuning configuration and its SageMaker Automatic Model Tuning form.

Strategies are SageMaker's: Bayesian (the default), Random, Grid (categorical ranges only, every
combination) and Hyperband (early-stopping of trials by a resource, here epochs)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

ParamName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")]
MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_:./-]{0,127}$")]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ParameterRange(Frozen):
    type: Literal["continuous", "integer", "categorical"]
    min: float | None = None
    max: float | None = None
    scaling: Literal["Auto", "Linear", "Logarithmic", "ReverseLogarithmic"] = "Auto"
    values: list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] | None = Field(
        default=None, min_length=1, max_length=30
    )

    @model_validator(mode="after")
    def _shape(self) -> ParameterRange:
        if self.type == "categorical":
            if not self.values or self.min is not None or self.max is not None:
                raise ValueError("a categorical range takes `values` (and no min/max)")
            return self
        if self.min is None or self.max is None or self.values is not None:
            raise ValueError(f"a {self.type} range takes `min` and `max` (and no values)")
        if self.min >= self.max:
            raise ValueError(f"min {self.min} must be below max {self.max}")
        if self.type == "integer" and (self.min != int(self.min) or self.max != int(self.max)):
            raise ValueError("an integer range needs whole numbers")
        if self.scaling == "Logarithmic" and self.min <= 0:
            raise ValueError("Logarithmic scaling needs min > 0")
        if self.scaling == "ReverseLogarithmic" and not (self.min >= 0 and self.max < 1):
            raise ValueError("ReverseLogarithmic scaling needs 0 <= min and max < 1")
        return self


class TuningConfig(Frozen):
    strategy: Literal["Bayesian", "Random", "Grid", "Hyperband"] = "Bayesian"
    objective_metric: MetricName = "validation:loss"
    objective_type: Literal["Minimize", "Maximize"] = "Minimize"
    max_jobs: int = Field(default=10, ge=1, le=500, description="trials (ignored by Grid: every combination)")
    max_parallel_jobs: int = Field(default=2, ge=1, le=100)
    ranges: dict[ParamName, ParameterRange] = Field(min_length=1, max_length=30)
    random_seed: int | None = Field(default=None, ge=0, le=2**31 - 1)
    early_stopping: Literal["Off", "Auto"] = "Off"
    hyperband_min_epochs: int = Field(default=1, ge=1, le=10_000)
    hyperband_max_epochs: int = Field(default=50, ge=1, le=10_000)

    @model_validator(mode="after")
    def _strategy_rules(self) -> TuningConfig:
        if self.strategy == "Grid" and any(r.type != "categorical" for r in self.ranges.values()):
            raise ValueError("the Grid strategy takes categorical ranges only")
        if self.strategy == "Hyperband" and self.early_stopping != "Off":
            raise ValueError("Hyperband stops trials itself: early_stopping must be Off")
        if self.hyperband_min_epochs > self.hyperband_max_epochs:
            raise ValueError("hyperband_min_epochs exceeds hyperband_max_epochs")
        if self.max_parallel_jobs > self.max_jobs and self.strategy != "Grid":
            raise ValueError("max_parallel_jobs exceeds max_jobs")
        return self

    def to_sagemaker(self) -> dict[str, Any]:
        """HyperParameterTuningJobConfig for CreateHyperParameterTuningJob."""
        ranges: dict[str, list[dict[str, Any]]] = {
            "ContinuousParameterRanges": [],
            "IntegerParameterRanges": [],
            "CategoricalParameterRanges": [],
        }
        for name, spec in sorted(self.ranges.items()):
            if spec.type == "categorical":
                ranges["CategoricalParameterRanges"].append({"Name": name, "Values": list(spec.values or [])})
            else:
                low, high = float(spec.min or 0), float(spec.max or 0)
                text = (str(int(low)), str(int(high))) if spec.type == "integer" else (repr(low), repr(high))
                key = "IntegerParameterRanges" if spec.type == "integer" else "ContinuousParameterRanges"
                ranges[key].append(
                    {"Name": name, "MinValue": text[0], "MaxValue": text[1], "ScalingType": spec.scaling}
                )
        limits: dict[str, int] = {"MaxParallelTrainingJobs": self.max_parallel_jobs}
        if self.strategy != "Grid":
            limits["MaxNumberOfTrainingJobs"] = self.max_jobs
        config: dict[str, Any] = {
            "Strategy": self.strategy,
            "HyperParameterTuningJobObjective": {"Type": self.objective_type, "MetricName": self.objective_metric},
            "ResourceLimits": limits,
            "ParameterRanges": ranges,
            "TrainingJobEarlyStoppingType": self.early_stopping,
        }
        if self.random_seed is not None:
            config["RandomSeed"] = self.random_seed
        if self.strategy == "Hyperband":
            config["StrategyConfig"] = {
                "HyperbandStrategyConfig": {
                    "MinResource": self.hyperband_min_epochs,
                    "MaxResource": self.hyperband_max_epochs,
                }
            }
        return config
