"""The audit log: read it, verify its chain."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lepton.api.deps import Caller, Service, page_size
from lepton.api.models import PageOut, VerifyOut
from lepton.api.routes.common import Cursor, Limit, ProjectPath
from lepton.registry.models import AuditEntry

router = APIGatewayRouter()
TAGS = ["audit"]


@router.get("/projects/<project>/audit", tags=TAGS, summary="Audit entries")
def audit(
    *,
    project: ProjectPath,
    svc: Service,
    caller: Caller,
    order: Annotated[Literal["newest", "oldest"], Query()] = "newest",
    limit: Limit = None,
    cursor: Cursor = None,
) -> PageOut[AuditEntry]:
    page = svc.audit_page(caller, project, page_size(limit), cursor, newest_first=order == "newest")
    return PageOut(items=page.items, next_cursor=page.cursor)


@router.get(
    "/projects/<project>/audit/verify",
    tags=TAGS,
    summary="Recompute the hash chain; report the first edited or missing entry",
)
def verify(project: ProjectPath, svc: Service, caller: Caller) -> VerifyOut:
    report = svc.verify_audit(caller, project)
    return VerifyOut.model_validate(report.model_dump())
