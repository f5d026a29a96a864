"""Build the registry service for a Lambda from its settings (adapters chosen here, once)."""

from __future__ import annotations

from functools import lru_cache

from lepton.registry.service import RegistryService, RetryPolicy
from lepton.settings import Settings


@lru_cache(maxsize=8)
def build_service(settings: Settings, *, verify_artifacts: bool | None = None) -> RegistryService:
    """The service wired to AWS (or the local runtime) as `settings` say: the DynamoDB table,
    the EventBridge bus (when EVENT_BUS_NAME is set) and S3 for artifact checksums (when
    VERIFY_ARTIFACTS). Cached: clients are created once per execution environment."""
    import boto3

    from lepton.events.publisher import EventBridgePublisher
    from lepton.registry.artifacts import S3ArtifactStore
    from lepton.registry.dynamo import DynamoRegistryRepository

    repo = DynamoRegistryRepository(
        settings.require_registry_table(), host=settings.dynamodb_endpoint, region=settings.region
    )
    publisher = None
    if settings.event_bus_name:
        events = boto3.client("events", region_name=settings.region, endpoint_url=settings.events_endpoint)
        publisher = EventBridgePublisher(settings.event_bus_name, events)
    artifacts = None
    if settings.verify_artifacts if verify_artifacts is None else verify_artifacts:
        s3 = boto3.client("s3", region_name=settings.region, endpoint_url=settings.s3_endpoint)
        artifacts = S3ArtifactStore(s3)
    retry = RetryPolicy(max_attempts=settings.registry_max_attempts)
    return RegistryService(repo, publisher, artifacts=artifacts, retry=retry)
