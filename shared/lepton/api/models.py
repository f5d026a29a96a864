"""Request bodies and response shapes of the REST API that are not registry records."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lepton.registry.models import FailureCause, Principal, Reason, Role, VersionNumber, VersionStatus
from lepton.registry.service import UNSET

T = TypeVar("T")


class Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ErrorBody(BaseModel):
    """Every 4xx (and the 5xx that would be a bug) answers with this body."""

    error: str = Field(description="stable machine-readable code, e.g. validation_failed, illegal_transition")
    message: str
    details: dict[str, Any] | None = Field(
        default=None, description="e.g. {'fields': [{'field': 'body.metrics.acc', 'problem': ...}]}"
    )


class PageOut(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="pass as `cursor` for the next page; absent on the last page"
    )


class ReasonBody(Body):
    reason: Reason


class PromoteBody(Body):
    reason: Reason
    expected_current: VersionNumber | None = Field(
        default=None,
        description="the production version the caller expects to replace (null: none yet); omitted: whatever "
        "production is when the request starts. A mismatch is 409.",
    )

    @property
    def expected(self) -> Any:
        return self.expected_current if "expected_current" in self.model_fields_set else UNSET


class RevertBody(PromoteBody):
    version: VersionNumber = Field(description="the earlier (SUPERSEDED) version to put back in production")


class RollbackBody(Body):
    reason: Reason
    expected_current: VersionNumber | None = None

    @property
    def expected(self) -> Any:
        return self.expected_current if "expected_current" in self.model_fields_set else UNSET


class AliasBody(Body):
    version: VersionNumber
    reason: Annotated[str, StringConstraints(max_length=1000)] = ""
    expected_version: VersionNumber | None = Field(
        default=None, description="the version the alias must point at now (null: unset); omitted: no check"
    )

    @property
    def expected(self) -> Any:
        return self.expected_version if "expected_version" in self.model_fields_set else UNSET


class TransitionBody(Body):
    status: VersionStatus = Field(description="DEPLOYING, FAILED or ARCHIVED (approve/reject have their own routes)")
    reason: Reason
    failure: FailureCause | None = None


class MemberBody(Body):
    principal: Principal = Field(description="IAM user or role ARN")
    role: Role


class VerifyOut(BaseModel):
    project: str
    ok: bool
    checked: int
    head_seq: int
    first_bad: int | None
    problem: str | None
    detail: str
