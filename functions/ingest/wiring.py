"""The one place that builds the real adapters from the environment (cached per Lambda container).

Environment (the template sets it):
    DATA_BUCKET                  bucket holding incoming/, curated/ and quarantine/
    REGISTRY_TABLE               the registry's DynamoDB table (DynamoDatasetRegistry)
    IDEMPOTENCY_TABLE            powertools idempotency table (partition key `id`, TTL attribute `expiration`)
    EVENT_BUS_NAME               EventBridge bus for DatasetAccepted / DatasetRejected
    LIFECYCLE_STATE_MACHINE_ARN  the lifecycle state machine started for each new dataset
    INGEST_MAX_BYTES             uploads larger than this are refused up front (default 2 GiB)
    IDEMPOTENCY_TTL_SECONDS      how long a processed object is remembered (default 86400)
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE  set by Lambda; bounds the size accepted (see service.BYTES_PER_MEMORY_BYTE)
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer
from botocore.config import Config
from dataprep.service import IngestResult, IngestService, IngestSettings, S3ObjectRef
from ingest_adapters import S3ObjectStore
from ingest_entry import IngestFunction
from pydantic import BaseModel, ConfigDict, Field

from lepton.data.ports import DatasetRegistry
from lepton.events import EventBridgePublisher
from lepton.executions import StepFunctionsLifecycle
from lepton.observability import metrics
from lepton.settings import STATE_MACHINE_ARN_PATTERN

DEFAULT_MAX_BYTES = 2 * 1024**3


class IngestEnvironment(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    data_bucket: str = Field(alias="DATA_BUCKET", min_length=3)
    registry_table: str = Field(alias="REGISTRY_TABLE", min_length=1)
    idempotency_table: str = Field(alias="IDEMPOTENCY_TABLE", min_length=1)
    event_bus_name: str = Field(alias="EVENT_BUS_NAME", min_length=1)
    lifecycle_state_machine_arn: str = Field(alias="LIFECYCLE_STATE_MACHINE_ARN", pattern=STATE_MACHINE_ARN_PATTERN)
    ingest_max_bytes: int = Field(alias="INGEST_MAX_BYTES", default=DEFAULT_MAX_BYTES, gt=0)
    idempotency_ttl_seconds: int = Field(alias="IDEMPOTENCY_TTL_SECONDS", default=86400, gt=0)
    memory_mb: int | None = Field(alias="AWS_LAMBDA_FUNCTION_MEMORY_SIZE", default=None, gt=0)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> IngestEnvironment:
        source = os.environ if environ is None else environ
        names = {f.alias for f in cls.model_fields.values() if f.alias}
        return cls.model_validate({k: v for k, v in source.items() if k in names})


_CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})


@cache
def environment() -> IngestEnvironment:
    return IngestEnvironment.from_env()


def _client(service: str) -> Any:
    return boto3.client(service, config=_CLIENT_CONFIG)  # type: ignore[call-overload]


def dataset_registry(table_name: str) -> DatasetRegistry:
    from lepton.registry.datasets import DynamoDatasetRegistry  # the registry engineer's adapter

    registry: DatasetRegistry = DynamoDatasetRegistry(table_name)
    return registry


@cache
def service() -> IngestService:
    env = environment()
    return IngestService(
        store=S3ObjectStore(_client("s3"), env.data_bucket),
        registry=dataset_registry(env.registry_table),
        lifecycle=StepFunctionsLifecycle(_client("stepfunctions"), env.lifecycle_state_machine_arn),
        publisher=EventBridgePublisher(env.event_bus_name, _client("events")),
        settings=IngestSettings(bucket=env.data_bucket, max_bytes=env.ingest_max_bytes, memory_mb=env.memory_mb),
    )


def _count_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    """Called when a delivery is answered from the idempotency store: S3 delivered it again."""
    metrics.add_metric(name="DuplicateDeliveries", unit="Count", value=1)
    return response


@cache
def idempotency_config() -> IdempotencyConfig:
    return IdempotencyConfig(
        event_key_jmespath="identity",
        expires_after_seconds=environment().idempotency_ttl_seconds,
        response_hook=_count_duplicate,
    )


def idempotent(ingest: IngestFunction, table_name: str, config: IdempotencyConfig) -> IngestFunction:
    """Wrap `ingest(ref=..., actor=...)` so that the work for one object identity (S3ObjectRef.identity)
    runs once: a duplicate delivery gets the stored IngestResult; one arriving while the first is still
    running raises IdempotencyAlreadyInProgressError (Lambda retries it later); a failure deletes the
    record, so a retry redoes the work."""
    persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=_client("dynamodb"))

    def ingest_object(*, ref: S3ObjectRef, actor: str) -> IngestResult:
        return ingest(ref=ref, actor=actor)

    wrapped: IngestFunction = idempotent_function(
        data_keyword_argument="ref",
        persistence_store=persistence,
        config=config,
        output_serializer=PydanticSerializer(model=IngestResult),
    )(ingest_object)
    return wrapped


@cache
def ingest_function() -> IngestFunction:
    return idempotent(service().ingest, environment().idempotency_table, idempotency_config())


def reset() -> None:
    """Forget the cached environment and clients (tests change the environment between cases)."""
    for cached in (environment, service, idempotency_config, ingest_function):
        cached.cache_clear()
