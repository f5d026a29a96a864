"""The envelope every Lepton event shares. A subclass names its detail-type and adds its fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

SOURCE = "lepton.lifecycle"


class LeptonEvent(BaseModel):
    """The `detail` of a Lepton event. `detail_type` is the EventBridge detail-type."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    detail_type: ClassVar[str]
    schema_version: int = 1
    project: str
    occurred_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    actor: str = Field(description="the principal (IAM ARN or system component) that caused the change")
