"""Training hyperparameters: names, types, ranges and defaults (docs/contracts.md section 2).

Validation happens before torch is imported so that a bad value fails the job in a second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lepton_ml.errors import JobFailure

MAX_HIDDEN_LAYERS = 8
MAX_LAYER_WIDTH = 4096


class TrainingHyperparameters(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: Annotated[int, Field(ge=1, le=10_000)] = 200
    batch_size: Annotated[int, Field(ge=1, le=65_536)] = 64
    learning_rate: Annotated[float, Field(gt=0, le=10)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 1e-4
    hidden_sizes: tuple[int, ...] = (64, 32)
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    patience: Annotated[int, Field(ge=1, le=10_000)] = 20
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] = 42
    optimizer: Literal["adam", "sgd", "adamw"] = "adam"
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @field_validator("hidden_sizes", mode="before")
    @classmethod
    def _split_sizes(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",")]
            if not value.strip() or any(not p for p in parts):
                raise ValueError("expected comma-separated positive integers such as 64,32")
            try:
                return tuple(int(p) for p in parts)
            except ValueError:
                raise ValueError("expected comma-separated positive integers such as 64,32") from None
        return value

    @field_validator("hidden_sizes")
    @classmethod
    def _check_sizes(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not 1 <= len(value) <= MAX_HIDDEN_LAYERS:
            raise ValueError(f"expected 1 to {MAX_HIDDEN_LAYERS} layer widths")
        if any(not 1 <= size <= MAX_LAYER_WIDTH for size in value):
            raise ValueError(f"every layer width must be between 1 and {MAX_LAYER_WIDTH}")
        return value

    def as_strings(self) -> dict[str, str]:
        """The values as SageMaker would pass them (for metadata.json and reruns)."""
        out: dict[str, str] = {}
        for name, value in self.model_dump().items():
            out[name] = ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)
        return out


def parse_hyperparameters(raw: Mapping[str, str]) -> TrainingHyperparameters:
    """Validates raw hyperparameters; a JobFailure names every bad or unknown hyperparameter."""
    try:
        return TrainingHyperparameters.model_validate(dict(raw))
    except ValidationError as exc:
        known = ", ".join(TrainingHyperparameters.model_fields)
        problems = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            if error["type"] == "extra_forbidden":
                problems.append(f"unknown hyperparameter '{name}' (known: {known})")
            else:
                message = error["msg"].removeprefix("Value error, ")
                problems.append(f"hyperparameter '{name}' = {raw.get(name)!r}: {message}")
        raise JobFailure("Invalid hyperparameters: " + "; ".join(problems) + ".") from None
