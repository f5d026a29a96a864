"""Parameter types and OpenAPI fragments shared by the routers."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

from lepton.api.models import ErrorBody
from lepton.registry.models import RUN_ID_PATTERN

ProjectPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$", description="project name")]
NumberPath = Annotated[int, Path(ge=1, le=9_999_999_999, description="version number")]
AliasPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,62}$", description="alias name")]
TagKeyPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="tag key")]
DatasetPath = Annotated[str, Path(pattern=r"^ds-[0-9a-f]{20}$", description="dataset id")]
RunPath = Annotated[str, Path(pattern=RUN_ID_PATTERN, description="run id")]
Limit = Annotated[int | None, Query(ge=1, le=500, description="page size (default REGISTRY_PAGE_SIZE)")]
Cursor = Annotated[str | None, Query(max_length=2048, description="`next_cursor` of the previous page (opaque)")]


ERRORS: dict[str, str] = {
    "400": "invalid input: the body names each bad field (details.fields)",
    "403": "the caller lacks the role this needs in the project, or is not a member",
    "404": "no such project, version, alias, dataset or run",
    "409": "illegal status transition (names the current status), or a concurrent change",
}
ERROR_MODEL = ErrorBody


def with_unavailable(
    status: int, model: type[BaseModel], description: str, unavailable: str
) -> dict[int, OpenAPIResponse]:
    """The responses of a route that calls Step Functions: its answer, and the 503 (ErrorBody) of a
    call Step Functions refused or did not answer. Giving `responses` replaces the success response
    powertools would generate, so it is declared here too."""
    return {
        status: {"description": description, "content": {"application/json": {"model": model}}},
        503: {"description": unavailable, "content": {"application/json": {"model": ErrorBody}}},
    }


def starting(status: int, model: type[BaseModel], description: str) -> dict[int, OpenAPIResponse]:
    """The responses of a route that starts a lifecycle execution (lepton.errors.ExecutionNotStarted)."""
    return with_unavailable(
        status,
        model,
        description,
        "the run is recorded but Step Functions did not start its execution: "
        "POST /projects/{project}/runs/{run_id}/start starts it (details.run_id)",
    )
