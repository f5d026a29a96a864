"""What route handlers receive: the caller and the registry service (built once per settings)."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.request import Request

from lepton.errors import Forbidden
from lepton.executions import StepFunctionsLifecycle
from lepton.registry.service import Actor, RegistryService
from lepton.registry.wiring import build_service
from lepton.settings import Settings, get_settings


def get_service() -> RegistryService:
    return build_service(get_settings())


def get_actor(request: Request) -> Actor:
    """The caller as API Gateway's AWS_IAM authorisation identified it (requestContext.identity)."""
    raw: Any = request.resolved_event.raw_event
    context = raw.get("requestContext") or {}
    arn = (context.get("identity") or {}).get("userArn")
    if not isinstance(arn, str) or not arn:
        raise Forbidden("the request carries no caller identity (the API requires AWS_IAM authorisation)")
    return Actor(arn)


@lru_cache(maxsize=8)
def _lifecycle(settings: Settings) -> StepFunctionsLifecycle:
    import boto3  # the endpoint of the local runtime comes from AWS_ENDPOINT_URL(_SFN), as botocore reads it

    client = boto3.client("stepfunctions", region_name=settings.region)
    return StepFunctionsLifecycle(client, settings.require_lifecycle_state_machine())


def get_lifecycle() -> StepFunctionsLifecycle:
    return _lifecycle(get_settings())


Service = Annotated[RegistryService, Depends(get_service)]
Caller = Annotated[Actor, Depends(get_actor)]
Lifecycle = Annotated[StepFunctionsLifecycle, Depends(get_lifecycle)]


def page_size(limit: int | None) -> int:
    return limit if limit is not None else get_settings().registry_page_size
