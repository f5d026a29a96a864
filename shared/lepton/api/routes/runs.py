"""Runs: branch records (a run from a base version with overrides)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lepton.api.deps import Caller, Service, page_size
from lepton.api.models import PageOut
from lepton.api.routes.common import Cursor, Limit, ProjectPath, RunPath
from lepton.registry.commands import NewRun
from lepton.registry.models import Run

router = APIGatewayRouter()
TAGS = ["runs"]


@router.post("/projects/<project>/runs", status_code=201, tags=TAGS, summary="Create a run (trainer)")
def create_run(project: ProjectPath, body: NewRun, svc: Service, caller: Caller) -> Run:
    return svc.create_run(caller, project, body)


@router.get("/projects/<project>/runs", tags=TAGS, summary="Runs, newest first")
def list_runs(
    project: ProjectPath, svc: Service, caller: Caller, limit: Limit = None, cursor: Cursor = None
) -> PageOut[Run]:
    page = svc.list_runs(caller, project, page_size(limit), cursor)
    return PageOut(items=page.items, next_cursor=page.cursor)


@router.get("/projects/<project>/runs/<run_id>", tags=TAGS, summary="A run")
def get_run(project: ProjectPath, run_id: RunPath, svc: Service, caller: Caller) -> Run:
    return svc.get_run(caller, project, run_id)
