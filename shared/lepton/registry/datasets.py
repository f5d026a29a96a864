"""`DatasetRegistry` (lepton.data.ports) on the registry's DynamoDB table: what the ingest
function uses to read a project's contract and record dataset versions and rejections."""

from __future__ import annotations

from lepton.data.models import DataContract, DatasetRejection, DatasetVersion
from lepton.registry.dynamo import DynamoRegistryRepository
from lepton.registry.service import Actor, RegistryService, RetryPolicy
from lepton.settings import Settings

INGEST_ACTOR = "lepton:ingest"


class DynamoDatasetRegistry:
    """Implements lepton.data.ports.DatasetRegistry.

    table_name: the registry table (REGISTRY_TABLE); host and region: default to the environment
    (AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL, unset on AWS; AWS_REGION); actor: the
    principal recorded in the audit log.

    Registering a dataset is one transaction (dataset item if absent, project counter and latest
    dataset, audit entry); adopting a contract is one conditional transaction (the first writer's
    contract wins). Rejections are stored idempotently and are not audited (they change nothing)."""

    def __init__(
        self,
        table_name: str,
        *,
        host: str | None = None,
        region: str | None = None,
        actor: str = INGEST_ACTOR,
        retry: RetryPolicy | None = None,
    ) -> None:
        settings = Settings.from_env()
        repo = DynamoRegistryRepository(
            table_name, host=host or settings.dynamodb_endpoint, region=region or settings.region
        )
        self._service = RegistryService(repo, retry=retry)
        self._actor = Actor(actor, system=True)

    def get_contract(self, project: str) -> DataContract | None:
        return self._service.get_contract(project)

    def adopt_contract(self, project: str, contract: DataContract) -> DataContract:
        return self._service.adopt_contract(self._actor, project, contract)

    def register_dataset(self, dataset: DatasetVersion) -> DatasetVersion:
        return self._service.register_dataset(self._actor, dataset)

    def record_rejection(self, rejection: DatasetRejection) -> DatasetRejection:
        return self._service.record_rejection(rejection)

    def latest_dataset(self, project: str) -> DatasetVersion | None:
        return self._service.latest_dataset(project)
