"""The ingest use case over in-memory fakes: what is written, registered, started and published."""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime

import pytest
from dataprep.service import IngestService, IngestSettings, Outcome, S3ObjectRef
from ingest_fakes import FakeRegistry, ListPublisher, MemoryStore, RecordingLifecycle
from ingest_helpers import csv_of, small_contract, small_rows, wine_bytes, wine_lines

from lepton.data.models import ColumnKind, ColumnSpec, ContractSource, DataContract, Task
from lepton.events.data import DatasetAccepted, DatasetRejected

NOW = datetime(2024, 5, 21, 9, 30, tzinfo=UTC)


class World:
    def __init__(self, *, max_bytes: int = 10**9, memory_mb: int | None = None) -> None:
        self.store = MemoryStore()
        self.registry = FakeRegistry(projects=["wine"])
        self.lifecycle = RecordingLifecycle()
        self.publisher = ListPublisher()
        self.service = IngestService(
            store=self.store,
            registry=self.registry,
            lifecycle=self.lifecycle,
            publisher=self.publisher,
            settings=IngestSettings(bucket=self.store.bucket, max_bytes=max_bytes, memory_mb=memory_mb),
            clock=lambda: NOW,
        )

    def upload(self, key: str, body: bytes) -> S3ObjectRef:
        etag = self.store.add(key, body)
        return S3ObjectRef(bucket=self.store.bucket, key=key, size=len(body), etag=etag, sequencer="00AA")

    def ingest(self, key: str, body: bytes) -> tuple[S3ObjectRef, object]:
        ref = self.upload(key, body)
        return ref, self.service.ingest(ref, actor="AWS:alice")


@pytest.fixture
def world() -> World:
    return World()


def test_an_accepted_upload_is_curated_registered_started_and_announced(world):
    ref, result = world.ingest("incoming/wine/wine.csv", wine_bytes())
    assert result.outcome is Outcome.ACCEPTED and result.project == "wine"
    prefix = f"curated/wine/{result.dataset_id}/"
    assert world.store.keys(prefix) == [
        prefix + k
        for k in sorted(
            [
                "manifest.json",
                "stats.json",
                "test/part-00000.parquet",
                "train/part-00000.parquet",
                "validation/part-00000.parquet",
            ]
        )
    ]
    assert world.store.writes[-1] == prefix + "manifest.json", "the manifest is written last"
    manifest = world.store.get_json(prefix + "manifest.json")
    for relative, digest in manifest["files"].items():
        assert hashlib.sha256(world.store.objects[prefix + relative]).hexdigest() == digest

    [version] = world.registry.datasets.values()
    assert version.number == 1 and result.dataset_number == 1
    assert version.source == ref.source and version.curated_prefix == f"s3://{world.store.bucket}/{prefix}"
    assert version.contract_source is ContractSource.INFERRED and version.parent_dataset_id is None
    assert (version.task, version.target, version.created_at) == (Task.CLASSIFICATION, "target", NOW)
    assert world.registry.contracts["wine"].source is ContractSource.INFERRED

    [(name, payload)] = world.lifecycle.executions.items()
    assert name == f"wine-{result.dataset_id}" == result.execution_name
    assert payload.model_dump() == {
        "project": "wine",
        "dataset_id": result.dataset_id,
        "dataset_number": 1,
        "curated_prefix": f"s3://{world.store.bucket}/{prefix}",
        "stats_uri": f"s3://{world.store.bucket}/{prefix}stats.json",
        "task": Task.CLASSIFICATION,
        "target": "target",
    }
    [event] = world.publisher.events
    assert isinstance(event, DatasetAccepted)
    assert (event.dataset_id, event.actor, event.source_key, event.rows) == (
        result.dataset_id,
        "AWS:alice",
        ref.key,
        version.rows,
    )
    assert "incoming/wine/wine.csv" in world.store.objects, "an accepted upload stays as the dataset's source"


def test_a_refused_upload_is_quarantined_with_a_report_and_nothing_else(world):
    body = wine_bytes().replace(b"14.23", b"=1+1", 1)
    _, result = world.ingest("incoming/wine/bad batch.csv", body)
    assert result.outcome is Outcome.REJECTED and result.problem_codes == ["formula"]
    assert world.store.objects["quarantine/wine/bad batch.csv"] == body
    report = world.store.get_json("quarantine/wine/bad batch.csv.report.json")
    assert report["project"] == "wine" and report["source"]["key"] == "incoming/wine/bad batch.csv"
    assert report["problems"] == [
        {
            "code": "formula",
            "message": report["problems"][0]["message"],
            "column": "alcohol",
            "rows": [1],
            "row_count": 1,
        }
    ]
    assert report["rows_in"] == 178 and report["rejection_id"] == result.rejection_id
    assert "incoming/wine/bad batch.csv" not in world.store.objects
    assert world.store.keys("curated/") == []
    assert world.registry.datasets == {} and "wine" not in world.registry.contracts
    [rejection] = world.registry.rejections.values()
    assert rejection.problems[0].code == "formula" and rejection.report_key == result.report_key
    assert world.lifecycle.executions == {}
    [event] = world.publisher.events
    assert isinstance(event, DatasetRejected) and event.problem_codes == ["formula"] and event.problem_count == 1


def test_the_copy_and_report_exist_before_the_upload_is_deleted(world):
    deleted_after: list[list[str]] = []
    original = world.store.delete

    def delete(key, **kwargs):
        deleted_after.append(world.store.keys("quarantine/"))
        return original(key, **kwargs)

    world.store.delete = delete
    world.ingest("incoming/wine/x.csv", b"")
    assert deleted_after == [["quarantine/wine/x.csv", "quarantine/wine/x.csv.report.json"]]


def test_an_unknown_project_is_refused_without_reading_the_file(world):
    _, result = world.ingest("incoming/vine/wine.csv", wine_bytes())
    assert result.outcome is Outcome.REJECTED and result.problem_codes == ["unknown_project"]
    assert world.store.opened == []
    report = world.store.get_json("quarantine/vine/wine.csv.report.json")
    assert "create it through the API" in report["problems"][0]["message"]
    assert world.registry.rejections == {}, "no project to record it under"


@pytest.mark.parametrize(
    ("key", "code"),
    [("incoming/wine.csv", "no_project"), ("incoming/Wine!/a.csv", "unknown_project"), ("incoming/wine/a.xlsx", None)],
)
def test_keys_that_do_not_name_a_project_or_a_csv(world, key, code):
    _, result = world.ingest(key, wine_bytes())
    expected = code or "unsupported_format"
    assert result.outcome is Outcome.REJECTED and result.problem_codes == [expected]
    assert world.store.opened == []


def test_a_file_over_the_limit_is_refused_up_front():
    world = World(max_bytes=1000)
    _, result = world.ingest("incoming/wine/wine.csv", wine_bytes())
    assert result.problem_codes == ["file_too_large"] and world.store.opened == []
    assert "INGEST_MAX_BYTES" in world.store.get_json(result.report_key)["problems"][0]["message"]


def test_the_memory_of_the_function_bounds_the_size_too():
    world = World(memory_mb=1)  # 1 MiB of memory holds a file of a fifth of that
    body = wine_bytes() * 20
    _, result = world.ingest("incoming/wine/wine.csv", body)
    assert result.problem_codes == ["file_too_large"]
    assert "memory" in world.store.get_json(result.report_key)["problems"][0]["message"]


def test_the_contract_limit_applies(world):
    header, rows = wine_lines()
    contract = world.registry.adopt_contract("wine", _wine_contract(max_bytes=500))
    assert contract.max_bytes == 500
    _, result = world.ingest("incoming/wine/wine.csv", csv_of(header, rows))
    assert result.problem_codes == ["file_too_large"]


def _wine_contract(**overrides) -> DataContract:
    header, _ = wine_lines()
    names = header.split(",")
    columns = [ColumnSpec(name=n, kind=ColumnKind.NUMERIC) for n in names]
    values = {"columns": columns, "target": "target", "task": Task.CLASSIFICATION, **overrides}
    return DataContract(**values)


def test_a_declared_contract_is_used_and_not_replaced(world):
    declared = world.registry.adopt_contract("wine", _wine_contract(min_rows=500))
    _, result = world.ingest("incoming/wine/wine.csv", wine_bytes())
    assert result.problem_codes == ["too_few_rows"]
    assert world.registry.contracts["wine"] is declared


def test_an_upload_that_loses_the_contract_race_is_checked_against_the_winner(world):
    winner = _wine_contract(task=Task.REGRESSION)
    adopt = world.registry.adopt_contract

    def racing_adopt(project, contract):
        world.registry.contracts.setdefault(project, winner)  # another upload adopted first
        return adopt(project, contract)

    world.registry.adopt_contract = racing_adopt
    _, result = world.ingest("incoming/wine/wine.csv", wine_bytes())
    assert result.outcome is Outcome.ACCEPTED
    [version] = world.registry.datasets.values()
    assert version.task is Task.REGRESSION and world.registry.contracts["wine"] is winner


def test_a_second_dataset_names_the_first_as_parent_and_gets_the_next_number(world):
    header, rows = wine_lines()
    _, first = world.ingest("incoming/wine/a.csv", csv_of(header, rows[:150]))
    _, second = world.ingest("incoming/wine/b.csv", csv_of(header, rows))
    assert (first.dataset_number, second.dataset_number) == (1, 2)
    assert world.registry.datasets[("wine", second.dataset_id)].parent_dataset_id == first.dataset_id
    assert len(world.lifecycle.executions) == 2


def test_the_same_rows_uploaded_again_in_another_order_make_no_second_dataset(world):
    header, rows = wine_lines()
    _, first = world.ingest("incoming/wine/a.csv", csv_of(header, rows))
    writes = len(world.store.writes)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    _, second = world.ingest("incoming/wine/b.csv", csv_of(header, shuffled))
    assert second.dataset_id == first.dataset_id and second.dataset_number == 1
    assert len(world.store.writes) == writes, "the curated dataset already in place is not rewritten"
    assert len(world.registry.datasets) == 1 and len(world.lifecycle.executions) == 1


def test_a_failure_after_writing_leaves_no_registered_dataset_and_a_retry_completes(world):
    world.registry.fail_next["register_dataset"] = RuntimeError("DynamoDB throttled")
    ref = world.upload("incoming/wine/wine.csv", wine_bytes())
    with pytest.raises(RuntimeError):
        world.service.ingest(ref, actor="AWS:alice")
    assert world.registry.datasets == {} and world.lifecycle.executions == {} and world.publisher.events == []
    result = world.service.ingest(ref, actor="AWS:alice")
    assert result.outcome is Outcome.ACCEPTED
    assert len(world.registry.datasets) == 1 and len(world.lifecycle.executions) == 1


def test_a_retry_after_a_quarantine_half_done_finishes_it(world):
    body = b"x,colour,y\n"
    ref = world.upload("incoming/wine/h.csv", body)
    world.registry.fail_next["record_rejection"] = RuntimeError("timeout")
    with pytest.raises(RuntimeError):
        world.service.ingest(ref, actor="a")
    assert "incoming/wine/h.csv" in world.store.objects, "not deleted before the rejection is recorded"
    result = world.service.ingest(ref, actor="a")
    assert result.outcome is Outcome.REJECTED and len(world.registry.rejections) == 1
    assert "incoming/wine/h.csv" not in world.store.objects


def test_an_object_already_quarantined_is_gone_not_an_error(world):
    ref, first = world.ingest("incoming/wine/h.csv", b"x,colour,y\n")
    assert first.outcome is Outcome.REJECTED
    world.store.objects.pop("quarantine/wine/h.csv.report.json")
    assert world.service.ingest(ref, actor="a").outcome is Outcome.GONE


def test_an_overwritten_key_is_left_to_its_own_event(world):
    ref = world.upload("incoming/wine/w.csv", wine_bytes())
    world.store.add("incoming/wine/w.csv", csv_of("x,colour,y", small_rows()))
    assert world.service.ingest(ref, actor="a").outcome is Outcome.SUPERSEDED
    assert world.store.keys("curated/") == [] and world.store.keys("quarantine/") == []


@pytest.mark.parametrize("key", ["incoming/wine/", "incoming/", "other/wine/a.csv"])
def test_folder_markers_and_other_prefixes_are_ignored(world, key):
    _, result = world.ingest(key, b"")
    assert result.outcome is Outcome.IGNORED and world.store.keys("quarantine/") == []


def test_another_bucket_is_ignored(world):
    ref = S3ObjectRef(bucket="elsewhere", key="incoming/wine/a.csv", size=10, etag="e")
    assert world.service.ingest(ref, actor="a").outcome is Outcome.IGNORED


def test_the_identity_keys_duplicates_together_and_reuploads_apart():
    a = S3ObjectRef(bucket="b", key="k", size=1, etag="e", sequencer="01")
    assert a.identity == a.model_copy().identity
    assert a.identity != a.model_copy(update={"sequencer": "02"}).identity  # the same bytes uploaded again
    versioned = S3ObjectRef(bucket="b", key="k", size=1, etag="e", version_id="v1", sequencer="01")
    assert versioned.identity == versioned.model_copy(update={"sequencer": "09"}).identity
    assert json.loads(a.model_dump_json())["identity"] == a.identity  # what the idempotency key reads


def test_small_contract_uploads_work_end_to_end(world):
    world.registry.projects.add("colours")
    world.registry.adopt_contract("colours", small_contract())
    _, result = world.ingest("incoming/colours/c.csv", csv_of("x,colour,y", small_rows(60)))
    assert result.outcome is Outcome.ACCEPTED
    stats = world.store.get_json(f"curated/colours/{result.dataset_id}/stats.json")
    assert [f["kind"] for f in stats["features"]] == ["numeric", "categorical"]
