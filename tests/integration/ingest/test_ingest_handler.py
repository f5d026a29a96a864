"""The ingest Lambda handler on moto: S3 put, then the real-shaped notification.

Acceptance 1 of issue 4: a good upload yields curated splits, stats and a DatasetVersion and starts
one execution; 20 duplicate deliveries (sequential and concurrent) yield one of each; every refusal
quarantines with a report naming the problem and writes nothing else. Acceptance 2: the same rows in
another order give the same content hash and split."""

from __future__ import annotations

import io
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow.parquet as pq
import pytest
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from ingest_harness import ROOT, LambdaContext
from ingest_helpers import accepted, csv_of, wine_bytes, wine_lines

SPLITS = ("train", "validation", "test")


def only_curated_dataset(aws) -> str:
    keys = aws.keys("curated/")
    datasets = {k.split("/")[2] for k in keys}
    assert len(datasets) == 1, keys
    return datasets.pop()


def test_a_good_upload_becomes_a_dataset_version_and_starts_one_execution(aws):
    key = "incoming/wine/red wine (2024).csv"
    result = aws.invoke(aws.upload(key, wine_bytes()))
    [outcome] = result["results"]
    assert outcome["outcome"] == "accepted" and outcome["key"] == key
    dataset_id = only_curated_dataset(aws)
    prefix = f"curated/wine/{dataset_id}/"
    assert aws.keys(prefix) == sorted(
        prefix + k for k in ("manifest.json", "stats.json", *(f"{s}/part-00000.parquet" for s in SPLITS))
    )
    manifest = aws.json(prefix + "manifest.json")
    rows = {s: pq.read_table(io.BytesIO(aws.read(f"{prefix}{s}/part-00000.parquet"))).num_rows for s in SPLITS}
    assert manifest["rows"] == rows and sum(rows.values()) == 178
    stats = aws.json(prefix + "stats.json")
    assert stats["dataset_id"] == dataset_id and stats["rows"] == rows and stats["task"] == "classification"

    [version] = aws.registry.datasets.values()
    assert version.dataset_id == dataset_id and version.number == 1
    assert version.source.key == key and version.source.version_id and version.source.etag
    assert version.curated_prefix == f"s3://lepton-data-test/{prefix}"

    [execution] = aws.executions()
    assert execution["name"] == f"wine-{dataset_id}"
    described = aws.sfn.describe_execution(executionArn=execution["executionArn"])
    assert '"dataset_number":1' in described["input"] and f'"stats_uri":"s3://lepton-data-test/{prefix}' in described[
        "input"
    ].replace(" ", "")
    [event] = aws.events()
    assert event["detail-type"] == "DatasetAccepted" and event["detail"]["dataset_id"] == dataset_id
    assert event["detail"]["actor"].startswith("AWS:")
    assert aws.keys("quarantine/") == []
    assert [r["status"]["S"] for r in aws.idempotency_records()] == ["COMPLETED"]


def test_twenty_duplicate_deliveries_in_sequence_make_one_of_each(aws):
    event = aws.upload("incoming/wine/wine.csv", wine_bytes())
    results = [aws.invoke(event)["results"][0] for _ in range(20)]
    assert {r["dataset_id"] for r in results} == {results[0]["dataset_id"]}
    assert len(aws.registry.datasets) == 1 and len(aws.executions()) == 1
    only_curated_dataset(aws)
    assert len(aws.events()) == 1, "duplicates answer from the idempotency store and publish nothing"
    assert aws.registry.calls.count("register_dataset") == 1


def test_twenty_concurrent_duplicate_deliveries_make_one_of_each(aws):
    """Threads stand for concurrent Lambda containers: they share AWS state, not Python objects
    (powertools' decorators are per process, so each thread calls the idempotent ingest directly)."""
    event = aws.upload("incoming/wine/wine.csv", wine_bytes())
    wiring, entry = aws.app.wiring, aws.app.ingest_entry
    ingest, config = wiring.ingest_function(), wiring.idempotency_config()
    in_progress = []
    start = threading.Barrier(20)

    def deliver(_: int) -> str:
        """One delivery, retried as Lambda retries an asynchronous invocation that failed."""
        start.wait()
        for _attempt in range(200):
            try:
                return entry.handle(S3Event(event), ingest, LambdaContext(), config)["results"][0]["dataset_id"]
            except IdempotencyAlreadyInProgressError:
                in_progress.append(1)  # another container is processing this object: Lambda retries later
                time.sleep(0.01)
        raise AssertionError("never completed")

    with ThreadPoolExecutor(max_workers=20) as pool:
        dataset_ids = set(pool.map(deliver, range(20)))
    assert in_progress, "the deliveries did overlap"
    assert len(dataset_ids) == 1
    assert len(aws.registry.datasets) == 1 and len(aws.executions()) == 1
    only_curated_dataset(aws)
    assert len(aws.events()) == 1


def test_the_same_rows_in_another_order_make_no_new_dataset_or_execution(aws):
    header, rows = wine_lines()
    first = aws.invoke(aws.upload("incoming/wine/a.csv", csv_of(header, rows)))["results"][0]
    shuffled = rows[:]
    random.Random(11).shuffle(shuffled)
    second = aws.invoke(aws.upload("incoming/wine/b.csv", csv_of(header, shuffled)))["results"][0]
    assert first["dataset_id"] == second["dataset_id"] and first["dataset_number"] == second["dataset_number"] == 1
    assert len(aws.executions()) == 1 and len(aws.registry.datasets) == 1
    only_curated_dataset(aws)


def test_a_failure_midway_leaves_no_idempotency_record_and_the_retry_completes(aws):
    event = aws.upload("incoming/wine/wine.csv", wine_bytes())
    aws.registry.fail_next["register_dataset"] = RuntimeError("ProvisionedThroughputExceeded")
    with pytest.raises(RuntimeError):
        aws.invoke(event)
    assert aws.idempotency_records() == [], "a failed run must not be remembered as done"
    assert aws.registry.datasets == {} and aws.executions() == []
    assert aws.invoke(event)["results"][0]["outcome"] == "accepted"
    assert len(aws.registry.datasets) == 1 and len(aws.executions()) == 1


HEADER, ROWS = wine_lines()
BAD_UPLOADS = {
    "empty": (b"", "empty_file"),
    "header only": (csv_of(HEADER, []), "header_only"),
    "not utf-8": (wine_bytes().replace(b"14.23", b"14.2\xe9", 1), "not_utf8"),
    "utf-16": (b"\xff\xfe" + wine_bytes().decode().encode("utf-16-le"), "not_utf8"),
    "wrong width": (wine_bytes().replace(b"14.23,", b"14.23,,", 1), "wrong_width"),
    "text in numbers": (wine_bytes().replace(b"14.23", b"n/a!", 1), "wrong_type"),
    "nan": (wine_bytes().replace(b"14.23", b"NaN", 1), "missing_value"),
    "infinity": (wine_bytes().replace(b"14.23", b"inf", 1), "non_finite"),
    "formula": (wine_bytes().replace(b"14.23", b"=SUM(A1:A3)", 1), "formula"),
    "missing column": (csv_of(HEADER.replace("alcohol,", ""), [r.split(",", 1)[1] for r in ROWS]), "missing_column"),
    "single class": (csv_of(HEADER, [r.rsplit(",", 1)[0] + ",1" for r in ROWS]), "single_class"),
    "too few rows": (csv_of(HEADER, ROWS[:8]), "too_few_rows"),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS), ids=list(BAD_UPLOADS))
def test_every_refusal_quarantines_with_a_report_and_writes_nothing_else(aws, case):
    """The project has the contract its first (good) upload established; each bad upload is refused."""
    aws.registry.adopt_contract("wine", accepted(wine_bytes()).contract)
    body, code = BAD_UPLOADS[case]
    key = f"incoming/wine/{case}.csv"
    [outcome] = aws.invoke(aws.upload(key, body))["results"]
    assert outcome["outcome"] == "rejected" and code in outcome["problem_codes"]
    quarantined = f"quarantine/wine/{case}.csv"
    assert aws.keys("quarantine/") == [quarantined, quarantined + ".report.json"]
    assert aws.read(quarantined) == body
    report = aws.json(quarantined + ".report.json")
    problem = next(p for p in report["problems"] if p["code"] == code)
    assert problem["message"]
    if case in {"not utf-8", "wrong width", "text in numbers", "nan", "infinity", "formula"}:
        assert problem["rows"] == [1] and problem["row_count"] == 1
    if case in {"not utf-8", "text in numbers", "nan", "infinity", "formula", "missing column"}:
        assert problem["column"] == "alcohol"
    assert aws.keys("incoming/") == [] and aws.keys("curated/") == []
    assert aws.registry.datasets == {} and aws.executions() == []
    [rejection] = aws.registry.rejections.values()
    assert rejection.report_key == quarantined + ".report.json"
    [event] = aws.events()
    assert event["detail-type"] == "DatasetRejected" and code in event["detail"]["problem_codes"]


def test_a_first_upload_infers_what_a_later_one_must_match(aws):
    """Without a contract, text in a column makes it categorical; once recorded, it is enforced."""
    first = wine_bytes().replace(b"14.23", b"n/a!", 1)
    assert aws.invoke(aws.upload("incoming/wine/first.csv", first))["results"][0]["outcome"] == "accepted"
    contract = aws.registry.contracts["wine"]
    assert next(c for c in contract.columns if c.name == "alcohol").kind == "categorical"
    assert aws.invoke(aws.upload("incoming/wine/again.csv", wine_bytes()))["results"][0]["outcome"] == "accepted"


def test_schema_drift_against_the_first_upload_names_the_columns(aws):
    header, rows = wine_lines()
    aws.invoke(aws.upload("incoming/wine/first.csv", csv_of(header, rows)))
    drifted = csv_of(header.replace("alcohol,", "ethanol,"), rows)
    [outcome] = aws.invoke(aws.upload("incoming/wine/second.csv", drifted))["results"]
    assert outcome["problem_codes"] == ["missing_column", "unexpected_column"]
    report = aws.json("quarantine/wine/second.csv.report.json")
    assert {(p["code"], p["column"]) for p in report["problems"]} == {
        ("missing_column", "alcohol"),
        ("unexpected_column", "ethanol"),
    }
    assert len(aws.registry.datasets) == 1


def test_an_unknown_project_is_refused_with_a_report_saying_so(aws):
    [outcome] = aws.invoke(aws.upload("incoming/nowhere/wine.csv", wine_bytes()))["results"]
    assert outcome["problem_codes"] == ["unknown_project"]
    report = aws.json("quarantine/nowhere/wine.csv.report.json")
    assert "does not exist" in report["problems"][0]["message"]
    assert aws.keys("incoming/") == [] and aws.keys("curated/") == []


def test_a_file_over_the_limit_is_refused_before_it_is_read(aws, monkeypatch):
    monkeypatch.setenv("INGEST_MAX_BYTES", "1000")
    aws.app.wiring.reset()
    reads: list[str] = []
    store_client = aws.app.wiring.service()._store._s3
    store_client.meta.events.register("before-call.s3.GetObject", lambda **kw: reads.append(kw["params"]["Key"]))
    [outcome] = aws.invoke(aws.upload("incoming/wine/big.csv", wine_bytes()))["results"]
    assert outcome["problem_codes"] == ["file_too_large"]
    assert "incoming/wine/big.csv" not in reads
    assert aws.keys("quarantine/") == ["quarantine/wine/big.csv", "quarantine/wine/big.csv.report.json"]


def test_the_bundled_datasets_are_accepted(aws):
    for name, project in (("wine", "wine"), ("breast_cancer", "cancer")):
        body = (ROOT / "data" / f"{name}.csv").read_bytes()
        [outcome] = aws.invoke(aws.upload(f"incoming/{project}/{name}.csv", body))["results"]
        assert outcome["outcome"] == "accepted", outcome
    assert len(aws.executions()) == 2
