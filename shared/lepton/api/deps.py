"""What route handlers receive: the caller and the registry service (built once per settings)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Depends
from aws_lambda_powertools.event_handler.request import Request

from lepton.errors import Forbidden
from lepton.registry.service import Actor, RegistryService
from lepton.registry.wiring import build_service
from lepton.settings import get_settings


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


Service = Annotated[RegistryService, Depends(get_service)]
Caller = Annotated[Actor, Depends(get_actor)]


def page_size(limit: int | None) -> int:
    return limit if limit is not None else get_settings().registry_page_size
