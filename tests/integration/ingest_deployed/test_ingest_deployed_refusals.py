"""Every refusal of issue 4 through the deployed template (acceptance 1): the upload lands in
quarantine/<project>/ with a JSON report naming rows and columns, the incoming object is gone,
nothing is written under curated/, the rejection is recorded in the registry (read through the
API), a DatasetRejected event reaches the bus and the DatasetsRejected metric is published.

The project declares its contract through the API: x (numeric), colour (categorical), y (the
class); 20 rows at least, formulas refused."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest
from ingest_deployed_world import IngestWorld, csv_of
from lepton_stack import deploy_lepton

HEADER = "x,colour,y"
COLOURS = ("red", "white", "rose")
CONTRACT = {
    "columns": [
        {"name": "x", "kind": "numeric"},
        {"name": "colour", "kind": "categorical"},
        {"name": "y", "kind": "numeric"},
    ],
    "target": "y",
    "task": "classification",
}


def rows(n: int = 40) -> list[str]:
    return [f"{i * 0.25 - 3},{COLOURS[i % 3]},{i % 2}" for i in range(n)]


def with_cell(row: int, column: int, cell: str) -> bytes:
    """The good file with one cell replaced (row is a 1-based data row, as reports number them)."""
    lines = rows()
    cells = lines[row - 1].split(",")
    cells[column] = cell
    lines[row - 1] = ",".join(cells)
    return csv_of(HEADER, lines)


def not_utf8() -> bytes:
    return with_cell(2, 1, "ros?").replace(b"ros?", b"ros\xe9")  # latin-1, as a spreadsheet may save it


# case -> (body, code, column, rows named)
REFUSALS = {
    "empty": (b"", "empty_file", None, []),
    "header only": (csv_of(HEADER, []), "header_only", None, []),
    "missing column": (
        csv_of("x,y", [f"{x},{y}" for x, _, y in (r.split(",") for r in rows())]),
        "missing_column",
        "colour",
        [],
    ),
    "unexpected column": (csv_of(HEADER + ",z", [r + ",1" for r in rows()]), "unexpected_column", "z", []),
    "wrong type": (with_cell(3, 0, "about 2"), "wrong_type", "x", [3]),
    "nan": (with_cell(5, 0, "NaN"), "missing_value", "x", [5]),
    "empty cell": (with_cell(6, 1, ""), "missing_value", "colour", [6]),
    "infinity": (with_cell(7, 0, "-inf"), "non_finite", "x", [7]),
    "not utf-8": (not_utf8(), "not_utf8", "colour", [2]),
    "wrong width": (with_cell(4, 2, "1,extra"), "wrong_width", None, [4]),
    "formula": (with_cell(9, 1, '"=HYPERLINK(""http://x"",""y"")"'), "formula", "colour", [9]),
    "formula in numbers": (with_cell(10, 0, "=1+2"), "formula", "x", [10]),
    "too few rows": (csv_of(HEADER, rows(12)), "too_few_rows", None, []),
    "fractional class": (with_cell(11, 2, "0.5"), "wrong_type", "y", [11]),
}


@pytest.fixture(scope="module")
def world(cloud):
    lepton = deploy_lepton(cloud, "ingrej")
    world = IngestWorld.attach(lepton)
    world.create_project("refuse", contract=CONTRACT)
    world.create_project("tiny", contract={**CONTRACT, "max_bytes": 200})
    return world


def assert_quarantined(world, project: str, name: str, body: bytes, key: str) -> dict:
    """The upload moved to quarantine/ with its report, and nothing else was written."""
    quarantined = f"quarantine/{project}/{name}"
    assert world.read(quarantined) == body
    report = world.json(quarantined + ".report.json")
    assert report["project"] == project and report["quarantine_key"] == quarantined
    assert report["source"]["key"] == key and report["problem_count"] == len(report["problems"])
    assert world.versions(key) == [], "the incoming object (its only version) is deleted"
    assert world.keys(f"curated/{project}/") == []
    [rejection] = [r for r in world.rejections(project) if r["source"]["key"] == key]
    assert rejection["rejection_id"] == report["rejection_id"]
    assert rejection["report_key"] == quarantined + ".report.json"
    assert rejection["problems"] == report["problems"]
    [event] = world.events_about("DatasetRejected", source_key=key)
    assert event["detail"]["rejection_id"] == report["rejection_id"]
    assert event["detail"]["problem_codes"] == sorted({p["code"] for p in report["problems"]})
    return report


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_a_refused_upload_is_quarantined_with_a_report_recorded_and_announced(world, case):
    body, code, column, named_rows = REFUSALS[case]
    name = f"{case} (upload).csv"
    key = f"incoming/refuse/{name}"
    rejected_before = world.metrics()["DatasetsRejected"]
    world.upload(key, body)
    report = assert_quarantined(world, "refuse", name, body, key)
    [problem] = [p for p in report["problems"] if p["code"] == code]
    assert problem["message"] and problem["column"] == column
    assert problem["rows"] == named_rows and problem["row_count"] == (len(named_rows) if named_rows else None)
    assert world.metrics()["DatasetsRejected"] == rejected_before + 1
    assert world.executions() == [] and world.datasets("refuse") == []


def test_a_file_over_the_contracts_size_limit_is_refused_before_it_is_read(world):
    body = csv_of(HEADER, rows())
    key = "incoming/tiny/big.csv"
    world.upload(key, body)
    report = assert_quarantined(world, "tiny", "big.csv", body, key)
    [problem] = report["problems"]
    assert problem["code"] == "file_too_large" and "max_bytes" in problem["message"]
    assert report["rows_in"] is None  # refused on the size the event announced, without reading it


def test_an_upload_for_a_project_that_does_not_exist_is_quarantined_with_its_reason(world):
    body = csv_of(HEADER, rows())
    world.upload("incoming/nowhere/data.csv", body)
    assert world.read("quarantine/nowhere/data.csv") == body
    report = world.json("quarantine/nowhere/data.csv.report.json")
    assert [p["code"] for p in report["problems"]] == ["unknown_project"]
    assert world.versions("incoming/nowhere/data.csv") == [] and world.keys("curated/nowhere/") == []
    [event] = world.events_about("DatasetRejected", source_key="incoming/nowhere/data.csv")
    assert event["detail"]["problem_codes"] == ["unknown_project"]


def test_formulas_are_neutralised_where_the_contract_says_so(world):
    """formula_policy 'neutralise': the upload is accepted, each formula cell prefixed with a quote,
    and the dataset version warns about them."""
    contract = {**CONTRACT, "formula_policy": "neutralise"}
    world.create_project("neutral", contract=contract, training={"hyperparameters": {"epochs": 2}})
    world.upload("incoming/neutral/data.csv", with_cell(9, 1, "=cmd|' /C calc'!A0"))
    [dataset] = world.datasets("neutral")
    [warning] = dataset["warnings"]
    assert warning["code"] == "formula_neutralised" and warning["column"] == "colour" and warning["rows"] == [9]
    prefix = f"curated/neutral/{dataset['dataset_id']}/"
    colours = set()
    for split in ("train", "validation", "test"):
        part = pq.read_table(io.BytesIO(world.read(f"{prefix}{split}/part-00000.parquet")))
        colours |= set(part["colour"].to_pylist())
    assert "'=cmd|' /C calc'!A0" in colours and "=cmd|' /C calc'!A0" not in colours
    assert world.keys("quarantine/neutral/") == []
