"""What the ingest logic needs from the registry. The DynamoDB registry implements it; unit tests
pass an in-memory fake."""

from __future__ import annotations

from typing import Protocol

from lepton.data.models import DataContract, DatasetRejection, DatasetVersion


class DatasetRegistry(Protocol):
    def get_contract(self, project: str) -> DataContract | None:
        """The project's contract, or None when the project has none yet.

        Raises lepton.errors.ProjectNotFound when the project does not exist."""

    def adopt_contract(self, project: str, contract: DataContract) -> DataContract:
        """Record `contract` as the project's contract if it has none (one conditional write) and
        return the contract in force afterwards: under a race, the first writer's contract wins."""

    def register_dataset(self, dataset: DatasetVersion) -> DatasetVersion:
        """Store an accepted dataset and return it with its dense per-project `number`.

        Idempotent on (project, dataset_id): registering the same content again returns the
        stored record unchanged."""

    def record_rejection(self, rejection: DatasetRejection) -> DatasetRejection:
        """Store a refused upload; idempotent on (project, rejection_id)."""

    def latest_dataset(self, project: str) -> DatasetVersion | None:
        """The project's most recently accepted dataset (for lineage), or None."""
