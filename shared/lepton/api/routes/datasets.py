"""Dataset versions (written by the ingest function) and rejected uploads."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from lepton.api.deps import Caller, Service, page_size
from lepton.api.models import PageOut
from lepton.api.routes.common import Cursor, DatasetPath, Limit, ProjectPath
from lepton.data.models import DatasetRejection, DatasetVersion

router = APIGatewayRouter()
TAGS = ["datasets"]


@router.get("/projects/<project>/datasets", tags=TAGS, summary="Accepted datasets, newest first")
def list_datasets(
    project: ProjectPath, svc: Service, caller: Caller, limit: Limit = None, cursor: Cursor = None
) -> PageOut[DatasetVersion]:
    page = svc.list_datasets(caller, project, page_size(limit), cursor)
    return PageOut(items=page.items, next_cursor=page.cursor)


@router.get("/projects/<project>/datasets/<dataset_id>", tags=TAGS, summary="A dataset version")
def get_dataset(project: ProjectPath, dataset_id: DatasetPath, svc: Service, caller: Caller) -> DatasetVersion:
    return svc.get_dataset(caller, project, dataset_id)


@router.get("/projects/<project>/rejections", tags=TAGS, summary="Refused uploads, newest first")
def list_rejections(
    project: ProjectPath, svc: Service, caller: Caller, limit: Limit = None, cursor: Cursor = None
) -> PageOut[DatasetRejection]:
    page = svc.list_rejections(caller, project, page_size(limit), cursor)
    return PageOut(items=page.items, next_cursor=page.cursor)
