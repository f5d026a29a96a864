"""DynamoDatasetRegistry: the ingest function's port on the registry table."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from registry_testkit import ALICE, dataset, make_service

from lepton.data.models import (
    ColumnKind,
    ColumnSpec,
    DataContract,
    DatasetRejection,
    Problem,
    SourceObject,
    Task,
)
from lepton.data.ports import DatasetRegistry
from lepton.errors import ProjectNotFound
from lepton.registry.commands import NewProject
from lepton.registry.datasets import DynamoDatasetRegistry


def contract(target: str = "y") -> DataContract:
    return DataContract(
        columns=[ColumnSpec(name="x", kind=ColumnKind.NUMERIC), ColumnSpec(name=target, kind=ColumnKind.NUMERIC)],
        target=target,
        task=Task.REGRESSION,
    )


@pytest.fixture
def registry(table: str) -> DynamoDatasetRegistry:
    make_service(table).create_project(ALICE, NewProject(name="wine"))
    return DynamoDatasetRegistry(table)


def test_it_is_the_port(registry: DynamoDatasetRegistry) -> None:
    port: DatasetRegistry = registry
    assert port.latest_dataset("wine") is None


def test_unknown_project(registry: DynamoDatasetRegistry) -> None:
    with pytest.raises(ProjectNotFound):
        registry.get_contract("nope")
    with pytest.raises(ProjectNotFound):
        registry.register_dataset(dataset("nope", 1))


def test_first_contract_wins_under_a_race(registry: DynamoDatasetRegistry) -> None:
    assert registry.get_contract("wine") is None
    candidates = [contract(f"y{i}") for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        adopted = list(pool.map(lambda c: registry.adopt_contract("wine", c), candidates))
    winner = registry.get_contract("wine")
    assert winner is not None and all(a == winner for a in adopted)
    assert registry.adopt_contract("wine", contract("other")) == winner


def test_datasets_get_dense_numbers_lineage_and_are_idempotent(registry: DynamoDatasetRegistry, table: str) -> None:
    first = registry.register_dataset(dataset("wine", 1))
    second = registry.register_dataset(dataset("wine", 2))
    assert (first.number, second.number) == (1, 2)
    assert second.parent_dataset_id == first.dataset_id
    assert registry.register_dataset(dataset("wine", 1)) == first
    latest = registry.latest_dataset("wine")
    assert latest is not None and latest.dataset_id == second.dataset_id
    svc = make_service(table)
    assert svc.get_project(ALICE, "wine").dataset_count == 2
    assert [d.number for d in svc.list_datasets(ALICE, "wine", 10, None).items] == [2, 1]
    assert svc.verify_audit(ALICE, "wine").ok


def test_rejections_are_idempotent(registry: DynamoDatasetRegistry, table: str) -> None:
    rejection = DatasetRejection(
        project="wine",
        rejection_id="rej-abc",
        source=SourceObject(bucket="b", key="incoming/wine/bad.csv", size=10),
        problems=[Problem(code="missing_columns", message="column y is missing", column="y")],
        quarantine_key="quarantine/wine/bad.csv",
        report_key="quarantine/wine/bad.csv.report.json",
    )
    assert registry.record_rejection(rejection) == rejection
    again = rejection.model_copy(update={"quarantine_key": "other"})
    assert registry.record_rejection(again) == rejection
    assert [r.rejection_id for r in make_service(table).list_rejections(ALICE, "wine", 10, None).items] == ["rej-abc"]
