"""Model versions: register, list, detail, tags and description, status, promote, log, diff,
branches."""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel, ConfigDict, Field

from lepton.api.deps import Caller, Lifecycle, Service, page_size
from lepton.api.models import PageOut, PromoteBody, ReasonBody, TransitionBody
from lepton.api.routes.common import Cursor, Limit, NumberPath, ProjectPath, TagKeyPath, starting
from lepton.api.routes.runs import RunStarted, started
from lepton.registry.commands import NewRun, RegisterVersion, VersionPatch
from lepton.registry.diff import VersionDiff
from lepton.registry.models import Alias, ModelVersion, RunOverrides, TagValue, VersionStatus, fresh
from lepton.registry.ports import VersionQuery

router = APIGatewayRouter()
TAGS = ["versions"]
BASE = "/projects/<project>/versions"


@router.post(
    BASE,
    status_code=201,
    tags=TAGS,
    responses={
        201: {"description": "registered", "content": {"application/json": {"model": ModelVersion}}},
        200: {
            "description": "this training job was registered before: the stored version",
            "content": {"application/json": {"model": ModelVersion}},
        },
    },
    summary="Register a model version (trainer)",
)
def register_version(
    project: ProjectPath, body: RegisterVersion, svc: Service, caller: Caller
) -> Response[ModelVersion]:
    version, created = svc.register_version(caller, project, body)
    return Response(
        status_code=201 if created else 200,
        content_type=content_types.APPLICATION_JSON,
        body=version,
        headers={"Location": f"/projects/{project}/versions/{version.number}"},
    )


@router.get(BASE, tags=TAGS, summary="Versions, newest first, filtered by status, branch or tag")
def list_versions(
    *,
    project: ProjectPath,
    svc: Service,
    caller: Caller,
    status: Annotated[VersionStatus | None, Query()] = None,
    branch: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")] = None,
    tag: Annotated[
        str | None, Query(pattern=r"^[A-Za-z0-9_.:-]{1,64}(=.{0,256})?$", description="key or key=value")
    ] = None,
    order: Annotated[Literal["newest", "oldest"], Query()] = "newest",
    limit: Limit = None,
    cursor: Cursor = None,
) -> PageOut[ModelVersion]:
    tag_key, has_value, tag_value = (tag or "").partition("=")
    query = VersionQuery(
        status=status,
        branch=branch,
        tag=tag_key or None,
        tag_value=tag_value if has_value else None,
        newest_first=order == "newest",
    )
    page = svc.list_versions(caller, project, query, page_size(limit), cursor)
    return PageOut(items=page.items, next_cursor=page.cursor)


@router.get(BASE + "/<number>", tags=TAGS, summary="A version")
def get_version(project: ProjectPath, number: NumberPath, svc: Service, caller: Caller) -> ModelVersion:
    return svc.get_version(caller, project, number)


@router.patch(BASE + "/<number>", tags=TAGS, summary="Change description and tags (the core is immutable)")
def update_version(
    project: ProjectPath, number: NumberPath, body: VersionPatch, svc: Service, caller: Caller
) -> ModelVersion:
    return svc.update_version(caller, project, number, body)


class TagBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    value: TagValue = Field(description="the tag's value")


@router.put(BASE + "/<number>/tags/<key>", tags=TAGS, summary="Set one tag (trainer)")
def set_tag(
    *, project: ProjectPath, number: NumberPath, key: TagKeyPath, body: TagBody, svc: Service, caller: Caller
) -> ModelVersion:
    return svc.update_version(caller, project, number, VersionPatch(set_tags={key: body.value}))


@router.delete(BASE + "/<number>/tags/<key>", tags=TAGS, summary="Remove one tag (trainer)")
def remove_tag(project: ProjectPath, number: NumberPath, key: TagKeyPath, svc: Service, caller: Caller) -> ModelVersion:
    return svc.update_version(caller, project, number, VersionPatch(remove_tags=[key]))


@router.post(BASE + "/<number>/approve", tags=TAGS, summary="REGISTERED -> APPROVED (approver)")
def approve(project: ProjectPath, number: NumberPath, body: ReasonBody, svc: Service, caller: Caller) -> ModelVersion:
    return svc.approve(caller, project, number, body.reason)


@router.post(BASE + "/<number>/reject", tags=TAGS, summary="REGISTERED -> REJECTED (approver)")
def reject(project: ProjectPath, number: NumberPath, body: ReasonBody, svc: Service, caller: Caller) -> ModelVersion:
    return svc.reject(caller, project, number, body.reason)


@router.post(
    BASE + "/<number>/transition",
    tags=TAGS,
    summary="Move along another allowed edge: DEPLOYING (approver), FAILED (trainer), ARCHIVED (admin)",
)
def transition(
    project: ProjectPath, number: NumberPath, body: TransitionBody, svc: Service, caller: Caller
) -> ModelVersion:
    return svc.transition(caller, project, number, body.status, body.reason, failure=body.failure)


@router.post(BASE + "/<number>/retire", tags=TAGS, summary="-> ARCHIVED (admin)")
def retire(project: ProjectPath, number: NumberPath, body: ReasonBody, svc: Service, caller: Caller) -> ModelVersion:
    return svc.retire(caller, project, number, body.reason)


@router.post(
    BASE + "/<number>/promote",
    tags=TAGS,
    summary="Point production at this version (approver); the old one becomes SUPERSEDED and previous",
)
def promote(project: ProjectPath, number: NumberPath, body: PromoteBody, svc: Service, caller: Caller) -> Alias:
    return svc.promote(caller, project, number, body.reason, expected_current=body.expected)


@router.get(BASE + "/<number>/log", tags=TAGS, summary="The version and its ancestors")
def log(
    project: ProjectPath,
    number: NumberPath,
    svc: Service,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=100)] = 100,
) -> list[ModelVersion]:
    return svc.log(caller, project, number, limit)


@router.get(
    BASE + "/<number>/diff/<other>",
    tags=TAGS,
    summary="Hyperparameters, metrics (with deltas), dataset and lineage of two versions",
)
def diff(project: ProjectPath, number: NumberPath, other: NumberPath, svc: Service, caller: Caller) -> VersionDiff:
    return svc.diff(caller, project, number, other)


class BranchBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    branch: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")] | None = None
    overrides: RunOverrides = fresh(RunOverrides)


@router.post(
    BASE + "/<number>/branches",
    status_code=201,
    tags=TAGS,
    summary="Branch: record a run from this version with overrides and start its lifecycle execution (trainer)",
    responses=starting(201, RunStarted, "the run, recorded, and its execution"),
)
def branch(
    project: ProjectPath, number: NumberPath, body: BranchBody, svc: Service, caller: Caller, lifecycle: Lifecycle
) -> RunStarted:
    command = NewRun(base_version=number, branch=body.branch, overrides=body.overrides)
    return started(lifecycle, svc.create_run(caller, project, command))
