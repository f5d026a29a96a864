"""Sample events: S3 notifications the function takes, and the events it publishes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_lambda_powertools.utilities.data_classes import S3Event
from ingest_entry import InvalidEvent, actor_of, handle, object_ref

from lepton.events.data import DatasetAccepted, DatasetRejected

ROOT = Path(__file__).resolve().parents[3]
S3_SAMPLES = sorted((ROOT / "events" / "s3").glob("*.json"))
DATA_SAMPLES = sorted((ROOT / "events" / "data").glob("*.json"))
MODELS = {"DatasetAccepted": DatasetAccepted, "DatasetRejected": DatasetRejected}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_there_are_samples_of_every_kind():
    assert {p.name for p in S3_SAMPLES} >= {"object-created.json", "object-created-encoded-key.json"}
    assert {load(p)["detail-type"] for p in DATA_SAMPLES} == set(MODELS)


@pytest.mark.parametrize("path", DATA_SAMPLES, ids=lambda p: p.name)
def test_published_event_samples_validate_against_their_models(path):
    event = load(path)
    model = MODELS[event["detail-type"]]
    assert event["source"] == "lepton.lifecycle"
    detail = model.model_validate(event["detail"])
    assert json.loads(detail.model_dump_json()) == event["detail"]


@pytest.mark.parametrize("path", S3_SAMPLES, ids=lambda p: p.name)
def test_s3_samples_become_object_refs(path):
    record = next(S3Event(load(path)).records)
    ref = object_ref(record)
    assert ref.bucket == "lepton-data-dev" and ref.key.startswith("incoming/")
    assert "+" not in ref.key and "%" not in ref.key
    assert actor_of(record).startswith("AWS:")


def test_keys_are_url_decoded_as_aws_encodes_them():
    record = next(S3Event(load(ROOT / "events" / "s3" / "object-created-encoded-key.json")).records)
    assert object_ref(record).key == "incoming/wine/red wine (2024) été.csv"
    unversioned = next(S3Event(load(ROOT / "events" / "s3" / "object-created-unversioned.json")).records)
    ref = object_ref(unversioned)
    assert ref.version_id is None and ref.sequencer == "0065A1B2C3D4E5F702" and ref.key.endswith("upload 1.csv")


def test_an_emulator_event_without_identity_or_sequencer_is_accepted():
    event = load(ROOT / "events" / "s3" / "object-created.json")
    record = event["Records"][0]
    for field in ("userIdentity", "requestParameters", "responseElements"):
        record.pop(field)
    record["s3"]["object"].pop("sequencer")
    record["s3"]["object"].pop("versionId")
    parsed = next(S3Event(event).records)
    assert actor_of(parsed) == "system:ingest" and object_ref(parsed).etag


def test_other_events_are_wiring_errors():
    event = load(ROOT / "events" / "s3" / "object-created.json")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    with pytest.raises(InvalidEvent):
        handle(S3Event(event), ingest=lambda **_: pytest.fail("must not ingest"))


def test_every_record_is_attempted_and_the_first_error_raised_after():
    event = load(ROOT / "events" / "s3" / "object-created.json")
    event["Records"] = [event["Records"][0], json.loads(json.dumps(event["Records"][0]))]
    event["Records"][1]["s3"]["object"]["key"] = "incoming/wine/second.csv"
    seen = []

    def ingest(*, ref, actor):
        seen.append(ref.key)
        raise RuntimeError("transient")

    with pytest.raises(RuntimeError):
        handle(S3Event(event), ingest=ingest)
    assert seen == ["incoming/wine/wine.csv", "incoming/wine/second.csv"]


def test_unit_tests_cannot_reach_the_network():
    import socket

    import pytest_socket

    with pytest.raises(pytest_socket.SocketBlockedError):
        socket.create_connection(("127.0.0.1", 9), timeout=0.1)
