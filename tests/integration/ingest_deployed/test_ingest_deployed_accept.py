"""A good upload through the deployed template, duplicate deliveries, re-uploads and reordered rows
(issue 4, acceptance 1 and 2).

The whole template is deployed into the local AWS; uploads go through S3 and its notification,
duplicates through Lambda Invoke of the deployed function, records are read through the REST API.
Each accepted dataset starts the real lifecycle (training through the local SageMaker); the
projects train for few epochs so that those executions stay short."""

from __future__ import annotations

import io
import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq
import pytest
from ingest_deployed_world import IngestWorld, csv_of, wine_bytes, wine_lines
from lepton_stack import deploy_lepton

SPLITS = ("train", "validation", "test")
SHORT_TRAINING = {"training": {"hyperparameters": {"epochs": 2}}}
KEY = "incoming/wine/Rosé wine (2024) 50%+&=.csv"  # arrives URL-encoded: Ros%C3%A9+wine+%282024%29+50%25%2B%26%3D.csv


@pytest.fixture(scope="module")
def world(cloud):
    lepton = deploy_lepton(cloud, "ingacc")
    world = IngestWorld.attach(lepton)
    world.create_project("wine", description="wine quality", **SHORT_TRAINING)
    return world


@pytest.fixture(scope="module")
def first(world):
    """The project's first upload (its contract is inferred from it and adopted)."""
    event = world.upload(KEY, wine_bytes())
    [dataset] = world.datasets("wine")
    return {"event": event, "dataset": dataset}


def split_rows(world, project: str, dataset_id: str) -> dict[str, set[tuple]]:
    prefix = f"curated/{project}/{dataset_id}/"
    rows = {}
    for split in SPLITS:
        table = pq.read_table(io.BytesIO(world.read(f"{prefix}{split}/part-00000.parquet")))
        rows[split] = set(zip(*(table.column(i).to_pylist() for i in range(table.num_columns)), strict=True))
    return rows


def test_a_good_upload_becomes_a_curated_dataset_a_dataset_version_and_one_execution(world, first):
    dataset = first["dataset"]
    dataset_id = dataset["dataset_id"]
    version_id = first["event"]["Records"][0]["s3"]["object"]["versionId"]
    assert dataset["number"] == 1 and dataset["status"] == "ACCEPTED" and dataset["contract_source"] == "inferred"
    assert dataset["source"]["key"] == KEY  # decoded from the notification's URL-encoded key
    assert dataset["source"]["version_id"] == version_id and dataset["source"]["etag"]
    assert dataset["rows_in"] == 178 and sum(dataset["rows"].values()) == 178

    assert list(world.curated("wine")) == [dataset_id]
    assert sorted(world.curated("wine")[dataset_id]) == sorted(
        ["manifest.json", "stats.json", *(f"{s}/part-00000.parquet" for s in SPLITS)]
    )
    manifest = world.check_manifest("wine", dataset_id)
    assert manifest["content_sha256"] == dataset["content_sha256"] and manifest["rows"] == dataset["rows"]
    assert {s: len(r) for s, r in split_rows(world, "wine", dataset_id).items()} == dataset["rows"]
    stats = world.json(f"curated/wine/{dataset_id}/stats.json")
    assert stats["dataset_id"] == dataset_id and stats["task"] == "classification" and stats["target"] == "target"
    assert [f["name"] for f in stats["features"]][:2] == ["alcohol", "malic_acid"]
    assert stats["target_stats"]["classes"] == [0, 1, 2]

    [execution] = world.executions()
    assert execution["name"] == f"wine-{dataset_id}"
    started = world.cloud.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert f'"dataset_id":"{dataset_id}"' in started["input"].replace(" ", "")

    [accepted] = world.events_about("DatasetAccepted", dataset_id=dataset_id)
    assert accepted["detail"]["source_key"] == KEY and accepted["detail"]["execution_name"] == execution["name"]
    assert world.keys("incoming/wine/") == [KEY]  # an accepted upload stays as the dataset's source
    assert world.keys("quarantine/") == []
    assert world.metrics()["DatasetsAccepted"] == 1


def test_twenty_duplicate_deliveries_in_sequence_make_no_second_anything(world, first):
    dataset_id = first["dataset"]["dataset_id"]
    before = world.metrics()
    answers = [world.invoke(first["event"]) for _ in range(20)]
    assert {(r["outcome"], r["dataset_id"]) for a in answers for r in a.results} == {("accepted", dataset_id)}
    assert len(world.datasets("wine")) == 1 and len(world.executions()) == 1
    assert list(world.curated("wine")) == [dataset_id]
    assert len(world.events_about("DatasetAccepted", dataset_id=dataset_id)) == 1
    after = world.metrics()
    assert after["DuplicateDeliveries"] - before["DuplicateDeliveries"] == 20
    assert after["DatasetsAccepted"] == before["DatasetsAccepted"]


def test_twenty_concurrent_duplicate_deliveries_make_no_second_anything(world, first):
    """20 threads deliver the processed event at once (and start the function's environments)."""
    dataset_id = first["dataset"]["dataset_id"]
    start = threading.Barrier(20)

    def deliver(_: int) -> list[dict]:
        start.wait()
        return world.deliver(first["event"]).results

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(deliver, range(20)))
    assert {(r["outcome"], r["dataset_id"]) for a in answers for r in a} == {("accepted", dataset_id)}
    assert len(world.datasets("wine")) == 1 and len(world.executions()) == 1
    assert list(world.curated("wine")) == [dataset_id]
    assert len(world.events_about("DatasetAccepted", dataset_id=dataset_id)) == 1


def synthetic_rows(count: int, seed: int) -> bytes:
    rng = random.Random(seed)
    lines = [
        f"{rng.gauss(0, 1):.6f},{rng.gauss(5, 2):.6f},{rng.choice('abc')},{rng.randrange(2)}" for _ in range(count)
    ]
    return csv_of("alcohol_proxy,acidity_proxy,kind,target", lines)


def test_an_upload_racing_twenty_deliveries_of_its_event_is_processed_once(world, first):
    """The S3 notification and 20 direct deliveries of the same event race each other: one of them
    does the work; the others find it in progress (and are retried, as Lambda retries) or answer
    from the idempotency record."""
    world.create_project("race", **SHORT_TRAINING)
    event = world.upload("incoming/race/race.csv", synthetic_rows(20_000, seed=3), wait=False)
    start = threading.Barrier(20)
    in_progress = []

    def deliver(_: int) -> str:
        start.wait()
        answer = world.invoke(event)
        if answer.error_type == "IdempotencyAlreadyInProgressError":
            in_progress.append(answer)
            answer = world.deliver(event)
        [result] = answer.results
        return str(result["dataset_id"])

    with ThreadPoolExecutor(max_workers=20) as pool:
        dataset_ids = set(pool.map(deliver, range(20)))
    world.cloud.wait_idle()
    [dataset_id] = dataset_ids
    assert in_progress, "the deliveries overlapped"
    [dataset] = world.datasets("race")
    assert dataset["dataset_id"] == dataset_id and dataset["rows_in"] == 20_000
    assert list(world.curated("race")) == [dataset_id]
    assert [e["name"] for e in world.executions() if e["name"].startswith("race-")] == [f"race-{dataset_id}"]
    assert len(world.events_about("DatasetAccepted", dataset_id=dataset_id)) == 1


def test_three_reuploads_of_the_same_content_are_the_same_dataset(world, first):
    """New object versions (and another key) with the same bytes: each is processed, all converge
    on the one dataset version, curated dataset and execution."""
    dataset_id = first["dataset"]["dataset_id"]
    datasets_before, executions_before = world.datasets("wine"), world.executions()
    curated_before = world.curated("wine")
    manifest = world.read(f"curated/wine/{dataset_id}/manifest.json")
    for key in (KEY, KEY, "incoming/wine/copy of wine.csv"):
        world.upload(key, wine_bytes())
    assert len(world.versions(KEY)) == 3
    assert world.datasets("wine") == datasets_before
    assert world.executions() == executions_before
    assert world.curated("wine") == curated_before
    assert world.read(f"curated/wine/{dataset_id}/manifest.json") == manifest
    accepted = world.events_about("DatasetAccepted", dataset_id=dataset_id)
    assert len(accepted) == 4 and {e["detail"]["dataset_number"] for e in accepted} == {1}


def test_the_same_rows_in_another_order_give_the_same_hash_dataset_and_split(world, first):
    """In the same project: the same dataset version. In a new project (its own curated copy and
    contract): byte-identical files, so every row falls in the same split."""
    header, rows = wine_lines()
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    assert shuffled != rows
    dataset = first["dataset"]
    datasets, executions = world.datasets("wine"), world.executions()
    world.upload("incoming/wine/shuffled.csv", csv_of(header, shuffled))
    assert world.datasets("wine") == datasets and world.executions() == executions
    [again] = world.events_about("DatasetAccepted", source_key="incoming/wine/shuffled.csv")
    assert again["detail"]["dataset_id"] == dataset["dataset_id"]
    assert again["detail"]["content_sha256"] == dataset["content_sha256"]

    world.create_project("wine-shuffled", **SHORT_TRAINING)
    world.upload("incoming/wine-shuffled/shuffled.csv", csv_of(header, shuffled))
    [other] = world.datasets("wine-shuffled")
    assert other["dataset_id"] == dataset["dataset_id"] and other["content_sha256"] == dataset["content_sha256"]
    assert split_rows(world, "wine-shuffled", other["dataset_id"]) == split_rows(world, "wine", dataset["dataset_id"])
    for split in SPLITS:
        part = f"{dataset['dataset_id']}/{split}/part-00000.parquet"
        assert world.read(f"curated/wine-shuffled/{part}") == world.read(f"curated/wine/{part}")


def test_an_upload_that_drifts_from_the_adopted_contract_is_refused_naming_the_columns(world, first):
    header, rows = wine_lines()
    drifted = csv_of(header.replace("alcohol,", "ethanol,"), rows)
    key = "incoming/wine/renamed column.csv"
    curated = world.curated("wine")
    world.upload(key, drifted)
    report = world.json("quarantine/wine/renamed column.csv.report.json")
    assert report["contract"] == "inferred"
    assert {(p["code"], p["column"]) for p in report["problems"]} == {
        ("missing_column", "alcohol"),
        ("unexpected_column", "ethanol"),
    }
    assert world.read("quarantine/wine/renamed column.csv") == drifted
    assert world.versions(key) == [] and world.curated("wine") == curated
    [rejection] = world.rejections("wine")
    assert rejection["source"]["key"] == key
    assert rejection["report_key"] == "quarantine/wine/renamed column.csv.report.json"
    [event] = world.events_about("DatasetRejected", source_key=key)
    assert event["detail"]["problem_codes"] == ["missing_column", "unexpected_column"]


def test_the_functions_role_allows_what_ingest_does_and_no_more(world):
    """Evaluated with IAM's rules (moto's policy engine) on the deployed role: the local runtime
    does not enforce a function's role, AWS does."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    policies = [IAMPolicy(json.dumps(document)) for document in world.role_policies()]

    def allowed(action: str, resource: str) -> bool:
        results = [p.is_action_permitted(action, resource) for p in policies]
        return PermissionResult.DENIED not in results and PermissionResult.PERMITTED in results

    bucket = f"arn:aws:s3:::{world.bucket}"
    upload, curated = f"{bucket}/incoming/wine/wine.csv", f"{bucket}/curated/wine/ds-0123/train/part-00000.parquet"
    quarantined = f"{bucket}/quarantine/wine/wine.csv.report.json"
    key = world.cloud.client("kms").describe_key(KeyId=world.physical_id("DataKey"))["KeyMetadata"]["Arn"]
    region, account = world.cloud.region, world.cloud.account
    idempotency = f"arn:aws:dynamodb:{region}:{account}:table/{world.physical_id('IdempotencyTable')}"
    registry = f"arn:aws:dynamodb:{region}:{account}:table/{world.lepton.table}"
    bus = f"arn:aws:events:{region}:{account}:event-bus/{world.lepton.outputs['EventBusName']}"
    needed = [
        *[(a, upload) for a in ("s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:DeleteObjectVersion")],
        *[(a, r) for a in ("s3:PutObject", "s3:GetObject") for r in (curated, quarantined)],
        ("s3:ListBucket", bucket),
        ("kms:Decrypt", key),  # reading SSE-KMS objects
        ("kms:GenerateDataKey", key),  # writing them
        *[(f"dynamodb:{a}", idempotency) for a in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")],
        *[(f"dynamodb:{a}", registry) for a in ("GetItem", "PutItem", "UpdateItem", "Query", "ConditionCheckItem")],
        ("states:StartExecution", world.lepton.state_machine),
        ("events:PutEvents", bus),
    ]
    assert [n for n in needed if not allowed(*n)] == []
    forbidden = [
        ("s3:PutObject", upload),  # a write under incoming/ would trigger the function again
        ("s3:DeleteObject", curated),  # curated datasets are immutable
        ("s3:DeleteObjectVersion", quarantined),
        ("s3:PutObject", f"{bucket}/models/wine/model.tar.gz"),
        ("s3:GetObject", f"{bucket}/models/wine/model.tar.gz"),
        ("kms:ScheduleKeyDeletion", key),
    ]
    assert [f for f in forbidden if allowed(*f)] == []
