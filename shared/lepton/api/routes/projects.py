"""Projects and their members."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lepton.api.deps import Caller, Service, page_size
from lepton.api.models import MemberBody, PageOut
from lepton.api.routes.common import Cursor, Limit, ProjectPath
from lepton.registry.commands import NewProject, ProjectPatch
from lepton.registry.models import Member, Membership, Project

router = APIGatewayRouter()
TAGS = ["projects"]


@router.post("/projects", status_code=201, tags=TAGS, summary="Create a project (you become its admin)")
def create_project(body: NewProject, svc: Service, caller: Caller) -> Project:
    return svc.create_project(caller, body)


@router.get("/projects", tags=TAGS, summary="The projects you are a member of")
def list_projects(svc: Service, caller: Caller, limit: Limit = None, cursor: Cursor = None) -> PageOut[Membership]:
    page = svc.list_projects(caller, page_size(limit), cursor)
    return PageOut(items=page.items, next_cursor=page.cursor)


@router.get("/projects/<project>", tags=TAGS, summary="A project")
def get_project(project: ProjectPath, svc: Service, caller: Caller) -> Project:
    return svc.get_project(caller, project)


@router.patch("/projects/<project>", tags=TAGS, summary="Change description, contract, training or policy")
def update_project(project: ProjectPath, body: ProjectPatch, svc: Service, caller: Caller) -> Project:
    return svc.update_project(caller, project, body)


@router.get("/projects/<project>/members", tags=TAGS, summary="Members and their roles")
def list_members(project: ProjectPath, svc: Service, caller: Caller) -> list[Member]:
    found = svc.get_project(caller, project)
    return [Member(principal=p, role=r) for p, r in sorted(found.members.items())]


@router.put("/projects/<project>/members", tags=TAGS, summary="Give a principal a role (admin)")
def set_member(project: ProjectPath, body: MemberBody, svc: Service, caller: Caller) -> list[Member]:
    found = svc.set_member(caller, project, body.principal, body.role)
    return [Member(principal=p, role=r) for p, r in sorted(found.members.items())]


@router.delete("/projects/<project>/members", tags=TAGS, summary="Remove a member (admin)")
def remove_member(
    project: ProjectPath,
    principal: Annotated[str, Query(pattern=r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:.{1,512}$")],
    svc: Service,
    caller: Caller,
) -> list[Member]:
    found = svc.set_member(caller, project, principal, None)
    return [Member(principal=p, role=r) for p, r in sorted(found.members.items())]
