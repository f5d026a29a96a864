"""Typed environment settings, read from os.environ at call time (not frozen at import).

pydantic-settings is not part of the layer, so this is a plain pydantic model built from the
environment the template sets:

| variable                      | meaning                                                       |
|-------------------------------|---------------------------------------------------------------|
| REGISTRY_TABLE                | the registry's DynamoDB table                                 |
| EVENT_BUS_NAME                | the EventBridge bus events go to (lepton-<stage>)             |
| STAGE                         | deployment stage (dev, prod, local, ...)                      |
| POWERTOOLS_SERVICE_NAME       | service name for logs, traces and metrics                     |
| POWERTOOLS_METRICS_NAMESPACE  | metrics namespace (Lepton)                                    |
| AWS_REGION / AWS_DEFAULT_REGION | region of the clients                                       |
| AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_EVENTS, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL |
|                               | endpoints of the local AWS runtime (unset on AWS)             |
| REGISTRY_MAX_ATTEMPTS         | attempts of a registry write under contention before a 409    |
| REGISTRY_PAGE_SIZE            | default page size of listings                                 |
| VERIFY_ARTIFACTS              | check an artifact's sha256 in S3 when a version is registered |
| LIFECYCLE_STATE_MACHINE_ARN   | the lifecycle state machine the API starts for each run       |
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lepton.errors import ConfigurationError

STATE_MACHINE_ARN_PATTERN = r"^arn:aws[\w-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    registry_table: str = Field(default="", alias="REGISTRY_TABLE")
    event_bus_name: str = Field(default="", alias="EVENT_BUS_NAME")
    stage: str = Field(default="dev", alias="STAGE")
    service_name: str = Field(default="lepton", alias="POWERTOOLS_SERVICE_NAME")
    metrics_namespace: str = Field(default="Lepton", alias="POWERTOOLS_METRICS_NAMESPACE")
    region: str = Field(default="us-east-1")
    dynamodb_endpoint: str | None = None
    events_endpoint: str | None = None
    s3_endpoint: str | None = None
    registry_max_attempts: int = Field(default=40, ge=1, le=200, alias="REGISTRY_MAX_ATTEMPTS")
    registry_page_size: int = Field(default=50, ge=1, le=500, alias="REGISTRY_PAGE_SIZE")
    verify_artifacts: bool = Field(default=True, alias="VERIFY_ARTIFACTS")
    lifecycle_state_machine_arn: str = Field(default="", alias="LIFECYCLE_STATE_MACHINE_ARN")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        generic = env.get("AWS_ENDPOINT_URL") or None
        values: dict[str, object] = {k: v for k, v in env.items() if k in _ALIASES}
        values["region"] = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
        values["dynamodb_endpoint"] = env.get("AWS_ENDPOINT_URL_DYNAMODB") or generic
        values["events_endpoint"] = env.get("AWS_ENDPOINT_URL_EVENTS") or generic
        values["s3_endpoint"] = env.get("AWS_ENDPOINT_URL_S3") or generic
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            names = ", ".join(str(e["loc"][0]) for e in exc.errors())
            raise ConfigurationError(f"invalid environment settings: {names}", errors=str(exc)) from exc

    def require_registry_table(self) -> str:
        if not self.registry_table:
            raise ConfigurationError("REGISTRY_TABLE is not set")
        return self.registry_table

    def require_lifecycle_state_machine(self) -> str:
        if not self.lifecycle_state_machine_arn:
            raise ConfigurationError("LIFECYCLE_STATE_MACHINE_ARN is not set")
        if not re.match(STATE_MACHINE_ARN_PATTERN, self.lifecycle_state_machine_arn):
            raise ConfigurationError(
                f"LIFECYCLE_STATE_MACHINE_ARN is not a state machine ARN: {self.lifecycle_state_machine_arn!r}"
            )
        return self.lifecycle_state_machine_arn


_ALIASES = {f.alias for f in Settings.model_fields.values() if f.alias}


def get_settings() -> Settings:
    """The settings of the current environment (read on every call; cheap)."""
    return Settings.from_env()
