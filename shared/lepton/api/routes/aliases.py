"""Aliases (production, previous, staging, user-defined), their history, revert and rollback."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lepton.api.deps import Caller, Service, page_size
from lepton.api.models import AliasBody, PageOut, RevertBody, RollbackBody
from lepton.api.routes.common import AliasPath, Cursor, Limit, ProjectPath
from lepton.registry.models import Alias, AliasHistoryEntry

router = APIGatewayRouter()
TAGS = ["aliases"]
BASE = "/projects/<project>/aliases"


@router.get(BASE, tags=TAGS, summary="All aliases of a project")
def list_aliases(project: ProjectPath, svc: Service, caller: Caller) -> list[Alias]:
    return svc.list_aliases(caller, project)


@router.get(BASE + "/<alias>", tags=TAGS, summary="An alias and its version (one read)")
def get_alias(project: ProjectPath, alias: AliasPath, svc: Service, caller: Caller) -> Alias:
    return svc.get_alias(caller, project, alias)


@router.put(
    BASE + "/<alias>",
    tags=TAGS,
    summary="Point an alias at a version: production is promote (approver), others trainer; previous is managed",
)
def set_alias(project: ProjectPath, alias: AliasPath, body: AliasBody, svc: Service, caller: Caller) -> Alias:
    return svc.set_alias(caller, project, alias, body.version, body.reason, expected_version=body.expected)


@router.delete(
    BASE + "/<alias>",
    status_code=204,
    tags=TAGS,
    summary="Remove a user-defined alias",
    responses={204: {"description": "removed; its history stays"}},
)
def delete_alias(
    project: ProjectPath,
    alias: AliasPath,
    svc: Service,
    caller: Caller,
    reason: Annotated[str, Query(max_length=1000)] = "",
) -> Response[None]:
    svc.delete_alias(caller, project, alias, reason)
    return Response(status_code=204)


@router.get(
    BASE + "/<alias>/history",
    tags=TAGS,
    summary="Moves of an alias, newest first; with `at`, the first item is what it pointed at then",
)
def alias_history(
    *,
    project: ProjectPath,
    alias: AliasPath,
    svc: Service,
    caller: Caller,
    at: Annotated[datetime | None, Query(description="ISO 8601 instant")] = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> PageOut[AliasHistoryEntry]:
    page = svc.alias_history(caller, project, alias, at=at, limit=page_size(limit), cursor=cursor)
    return PageOut(items=page.items, next_cursor=page.cursor)


@router.post(
    "/projects/<project>/revert",
    tags=TAGS,
    summary="Re-promote an earlier (SUPERSEDED) version (approver); history is appended, never rewritten",
)
def revert(project: ProjectPath, body: RevertBody, svc: Service, caller: Caller) -> Alias:
    return svc.revert(caller, project, body.version, body.reason, expected_current=body.expected)


@router.post(
    "/projects/<project>/rollback",
    tags=TAGS,
    summary="Production back to `previous`; the current version becomes ROLLED_BACK (approver)",
)
def rollback(project: ProjectPath, body: RollbackBody, svc: Service, caller: Caller) -> Alias:
    return svc.rollback(caller, project, body.reason, expected_current=body.expected)
