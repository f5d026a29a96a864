"""The data preparation pipeline: contract inference, cleaning, split, profile, serialisation."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dataprep import reading
from dataprep.hashing import row_hashes, split_thresholds
from ingest_helpers import (
    DIABETES,
    SMALL_HEADER,
    accepted,
    csv_of,
    problem,
    refused,
    small_contract,
    small_rows,
    split_table,
    wine_bytes,
    wine_lines,
)

from lepton.data.models import ColumnKind, ColumnSpec, ContractSource, NullPolicy, Task


def test_wine_is_accepted_with_an_inferred_contract_and_the_curated_layout():
    prepared = accepted(wine_bytes())
    contract = prepared.contract
    assert contract.source is ContractSource.INFERRED
    assert contract.target == "target" and contract.task is Task.CLASSIFICATION
    assert [c.kind for c in contract.columns] == [ColumnKind.NUMERIC] * 14
    assert not any(c.nullable for c in contract.columns)
    assert prepared.rows_in == 178 and prepared.rows_dropped == {}
    assert prepared.rows.train + prepared.rows.validation + prepared.rows.test == 178
    assert [o.relative_key for o in prepared.objects] == [
        "train/part-00000.parquet",
        "validation/part-00000.parquet",
        "test/part-00000.parquet",
        "stats.json",
    ]
    assert prepared.dataset_id == "ds-" + prepared.content_sha256[:20]

    train = split_table(prepared, "train")
    features = [c.name for c in contract.features]
    assert train.column_names == [*features, "target"]
    assert all(train.schema.field(f).type == pa.float64() for f in features)
    assert train.schema.field("target").type == pa.int64()
    assert train.num_rows == prepared.rows.train

    manifest = json.loads(bytes(prepared.manifest().body))
    assert manifest["dataset_id"] == prepared.dataset_id
    assert manifest["files"] == {o.relative_key: o.sha256 for o in prepared.objects}
    assert manifest["rows"] == prepared.rows.model_dump()


def test_statistics_come_from_the_training_split_only():
    prepared = accepted(wine_bytes())
    stats = prepared.stats
    train = split_table(prepared, "train")
    assert stats["rows"] == prepared.rows.model_dump()
    assert [f["name"] for f in stats["features"]] == [c.name for c in prepared.contract.features]
    alcohol = next(f for f in stats["features"] if f["name"] == "alcohol")
    values = train.column("alcohol").to_numpy()
    assert alcohol["count"] == train.num_rows and alcohol["null_count"] == 0
    assert alcohol["mean"] == pytest.approx(values.mean())
    assert alcohol["std"] == pytest.approx(values.std(ddof=0))
    assert (alcohol["min"], alcohol["max"]) == (values.min(), values.max())
    assert alcohol["quantiles"]["0.5"] == pytest.approx(np.quantile(values, 0.5))
    counts, edges = np.histogram(values, bins=10)
    assert alcohol["histogram"] == {"counts": counts.tolist(), "edges": edges.tolist()}
    target = stats["target_stats"]
    assert target["kind"] == "categorical" and target["classes"] == [0, 1, 2]
    train_targets = train.column("target").to_pylist()
    assert target["counts"] == {str(c): train_targets.count(c) for c in (0, 1, 2)}
    assert stats["split"]["fractions"] == {"train": 0.7, "validation": 0.15, "test": 0.15}


def test_the_same_rows_in_another_order_give_the_same_dataset_split_and_bytes():
    header, rows = wine_lines()
    shuffled = rows[:]
    random.Random(7).shuffle(shuffled)
    first, second = accepted(csv_of(header, rows)), accepted(csv_of(header, shuffled))
    assert shuffled != rows
    assert first.content_sha256 == second.content_sha256 and first.dataset_id == second.dataset_id
    assert [(o.relative_key, o.sha256) for o in first.objects] == [(o.relative_key, o.sha256) for o in second.objects]
    for split in ("train", "validation", "test"):
        assert split_table(first, split).equals(split_table(second, split))


def test_each_row_goes_to_the_split_its_hash_names():
    prepared = accepted(wine_bytes())
    t1, t2 = split_thresholds(prepared.contract.split)
    order = [c.name for c in prepared.contract.features] + ["target"]
    for split, (low, high) in {"train": (0, t1), "validation": (t1, t2), "test": (t2, 2**64)}.items():
        table = split_table(prepared, split)
        columns = [table.column(n).combine_chunks().cast(pa.float64()) for n in order]
        hashes = row_hashes(columns)
        assert all(low <= int(h) < high for h in hashes), split
        assert list(hashes) == sorted(hashes), "rows are stored in hash order"


def test_line_endings_and_a_byte_order_mark_do_not_change_the_dataset():
    header, rows = wine_lines()
    plain = accepted(csv_of(header, rows)).dataset_id
    assert accepted(csv_of(header, rows, newline="\r\n")).dataset_id == plain
    assert accepted(b"\xef\xbb\xbf" + csv_of(header, rows)).dataset_id == plain


def test_duplicate_rows_are_dropped_counted_and_named():
    header, rows = wine_lines()
    with_duplicates = [*rows, rows[3], rows[10], rows[3]]
    prepared = accepted(csv_of(header, with_duplicates))
    assert prepared.rows_in == 181
    assert prepared.rows_dropped == {"duplicate": 3}
    warning = next(w for w in prepared.warnings if w.code == "duplicate_rows")
    assert warning.rows == [179, 180, 181] and warning.row_count == 3
    assert prepared.dataset_id == accepted(csv_of(header, rows)).dataset_id


def test_regression_target_is_float_and_profiled_as_numbers():
    prepared = accepted(DIABETES.read_bytes())
    assert prepared.contract.task is Task.REGRESSION
    test = split_table(prepared, "test")
    assert test.schema.field("target").type == pa.float64()
    target = prepared.stats["target_stats"]
    train = split_table(prepared, "train").column("target").to_numpy()
    assert target == {
        "kind": "numeric",
        "mean": pytest.approx(train.mean()),
        "std": pytest.approx(train.std()),
        "min": train.min(),
        "max": train.max(),
    }


def test_columns_in_another_order_than_the_contract_are_stored_in_contract_order():
    contract = small_contract()
    rows = [",".join([c, x, y]) for x, c, y in (r.split(",") for r in small_rows())]
    prepared = accepted(csv_of("colour,x,y", rows), contract)
    assert split_table(prepared, "train").column_names == ["x", "colour", "y"]
    assert prepared.dataset_id == accepted(csv_of(SMALL_HEADER, small_rows()), contract).dataset_id


def test_categorical_statistics_are_sorted_frequencies_with_nulls_counted():
    contract = small_contract(
        columns=[
            small_contract().columns[0],
            small_contract().columns[1].model_copy(update={"nullable": True}),
            small_contract().columns[2],
        ]
    )
    rows = small_rows(60)
    rows[4] = "-1,,0"
    prepared = accepted(csv_of(SMALL_HEADER, rows), contract)
    colour = next(f for f in prepared.stats["features"] if f["name"] == "colour")
    train = split_table(prepared, "train").column("colour").to_pylist()
    assert colour["null_count"] == train.count(None) and colour["count"] == len(train)
    present = [v for v in train if v is not None]
    assert colour["categories"] == {v: present.count(v) / len(present) for v in sorted(set(present))}
    assert list(colour["categories"]) == sorted(colour["categories"])


def test_drop_row_policy_drops_and_counts_rows_with_forbidden_empty_cells():
    rows = small_rows(40)
    rows[2] = ",red,0"
    rows[7] = "1.5,,1"
    prepared = accepted(csv_of(SMALL_HEADER, rows), small_contract(null_policy=NullPolicy.DROP_ROW))
    assert prepared.rows_dropped == {"missing_value": 2}
    assert next(w for w in prepared.warnings if w.code == "rows_dropped").rows == [3, 8]
    assert sum(prepared.rows.model_dump().values()) == 38


def test_impute_policy_fills_from_the_training_split_but_never_invents_a_target():
    rows = small_rows(40)
    rows[2] = ",red,0"
    rows[5] = "2.5,white,"
    prepared = accepted(csv_of(SMALL_HEADER, rows), small_contract(null_policy=NullPolicy.IMPUTE))
    assert prepared.rows_dropped == {"missing_value": 1}  # the empty target
    imputed = next(w for w in prepared.warnings if w.code == "imputed")
    assert imputed.column == "x" and imputed.rows == [3]
    tables = [split_table(prepared, s) for s in ("train", "validation", "test")]
    assert all(t.column("x").null_count == 0 for t in tables)
    train_x = [v for v in tables[0].column("x").to_pylist()]
    original = sorted(float(r.split(",")[0]) for i, r in enumerate(rows) if i not in (2, 5))
    assert set(train_x) - set(original) <= {float(np.median([v for v in train_x if v in original]))}


def test_formulas_are_neutralised_when_the_contract_says_so():
    rows = small_rows(40)
    rows[1] = '1,"=HYPERLINK(""http://x"")",1'
    rows[6] = "2,@SUM(A1),0"
    prepared = accepted(csv_of(SMALL_HEADER, rows), small_contract(formula_policy="neutralise"))
    warning = next(w for w in prepared.warnings if w.code == "formula_neutralised")
    assert warning.column == "colour" and warning.rows == [2, 7]
    values = []
    for split in ("train", "validation", "test"):
        values += split_table(prepared, split).column("colour").to_pylist()
    assert '\'=HYPERLINK("http://x")' in values and "'@SUM(A1)" in values
    assert not any(v.startswith(("=", "@")) for v in values)


def test_signed_numbers_are_numbers_not_formulas():
    rows = small_rows(40)
    rows[0] = "-1.5,-2,1"
    rows[1] = "+3e2,+7,0"
    prepared = accepted(csv_of(SMALL_HEADER, rows), small_contract())
    values = set()
    for split in ("train", "validation", "test"):
        values |= set(split_table(prepared, split).column("colour").to_pylist())
    assert {"-2", "+7"} <= values


def test_a_quoted_cell_spanning_lines_across_read_blocks_is_read_correctly(monkeypatch):
    monkeypatch.setattr(reading, "BLOCK_SIZE", 256)  # many blocks: a boundary falls inside the quoted cell
    rows = small_rows(60)
    rows[20] = '4.25,"deep\nred",1'
    rows[21] = '4.5,"dark\r\nrose,0,1",0'  # the inner line alone would look like a whole row
    prepared = accepted(csv_of(SMALL_HEADER, rows), small_contract())
    values = set()
    for split in ("train", "validation", "test"):
        values |= set(split_table(prepared, split).column("colour").to_pylist())
    assert {"deep\nred", "dark\r\nrose,0,1"} <= values
    assert sum(prepared.rows.model_dump().values()) == 60


def test_inference_reads_past_a_misleading_sample(monkeypatch):
    monkeypatch.setattr(reading, "SAMPLE_BYTES", 200)  # the sample sees only numbers in `code`
    rows = [f"{i},{i % 7},{i % 2}" for i in range(60)] + ["61,A7,1"]
    prepared = accepted(csv_of("x,code,label", rows))
    kinds = {c.name: c.kind for c in prepared.contract.columns}
    assert kinds == {"x": ColumnKind.NUMERIC, "code": ColumnKind.CATEGORICAL, "label": ColumnKind.NUMERIC}
    assert prepared.contract.target == "label"


def test_timings_cover_every_phase():
    prepared = accepted(wine_bytes())
    assert set(prepared.timings) == {"read", "validate", "hash", "order", "clean", "split_profile"}


def test_nan_and_infinity_are_just_text_in_a_categorical_column():
    rows = small_rows(40)
    rows[0] = "1,nan,1"
    rows[1] = '2,"",0'  # a quoted empty cell is empty
    contract = small_contract(
        columns=[
            small_contract().columns[0],
            small_contract().columns[1].model_copy(update={"nullable": True}),
            small_contract().columns[2],
        ]
    )
    prepared = accepted(csv_of(SMALL_HEADER, rows), contract)
    values = []
    for split in ("train", "validation", "test"):
        values += split_table(prepared, split).column("colour").to_pylist()
    assert "nan" in values and values.count(None) == 1


def test_a_contract_without_a_validation_split_writes_an_empty_one():
    prepared = accepted(
        csv_of(SMALL_HEADER, small_rows(60)), small_contract(split={"train": 0.8, "validation": 0.0, "test": 0.2})
    )
    assert prepared.rows.validation == 0 and split_table(prepared, "validation").num_rows == 0
    assert prepared.stats["split"]["fractions"] == {"train": 0.8, "validation": 0.0, "test": 0.2}


def test_inference_without_a_complete_row_in_the_sample_reads_everything_as_text(monkeypatch):
    monkeypatch.setattr(reading, "SAMPLE_BYTES", 20)  # the header and part of the first row
    rows = [f"{i},{i % 7},{i % 2}" for i in range(60)]
    prepared = accepted(csv_of("x,code,label", rows))
    assert {c.name: c.kind for c in prepared.contract.columns} == dict.fromkeys(["x", "code", "label"], "numeric")


def test_large_splits_are_stored_in_parts_read_in_name_order(monkeypatch):
    from dataprep import writing

    whole = accepted(wine_bytes())
    monkeypatch.setattr(writing, "PART_ROWS", 50)
    parted = accepted(wine_bytes())
    train_keys = [o.relative_key for o in parted.objects if o.relative_key.startswith("train/")]
    assert train_keys == ["train/part-00000.parquet", "train/part-00001.parquet", "train/part-00002.parquet"]
    assert parted.dataset_id == whole.dataset_id
    parts = [pq.read_table(pa.BufferReader(o.body)) for o in parted.objects if o.relative_key in train_keys]
    assert [p.num_rows for p in parts] == [50, 50, parted.rows.train - 100]
    assert pa.concat_tables(parts).equals(split_table(whole, "train"))
    assert set(json.loads(bytes(parted.manifest().body))["files"]) >= set(train_keys)


def test_text_columns_are_stored_as_plain_strings():
    """Text is handled dictionary-encoded inside; readers of the parts get `string` columns."""
    prepared = accepted(csv_of(SMALL_HEADER, small_rows(60)), small_contract())
    for split in ("train", "validation", "test"):
        assert split_table(prepared, split).schema.field("colour").type == pa.string()


def test_rows_that_are_dropped_leave_no_trace_in_the_stored_bytes():
    """A dropped row's values (here an empty target and a category no kept row has) do not reach
    the files: the same kept rows give byte-identical parts."""
    contract = small_contract(null_policy=NullPolicy.DROP_ROW)
    rows = small_rows(60)
    with_dropped = [*rows[:10], "0.125,violet,", *rows[10:]]
    first = accepted(csv_of(SMALL_HEADER, rows), contract)
    second = accepted(csv_of(SMALL_HEADER, with_dropped), contract)
    assert second.rows_dropped == {"missing_value": 1}
    assert [(o.relative_key, o.sha256) for o in first.objects] == [(o.relative_key, o.sha256) for o in second.objects]


def test_a_neutralised_formula_equal_to_a_quoted_cell_is_the_same_value():
    """'=A1' neutralised is "'=A1"; a row that already held "'=A1" is then identical, hence a duplicate."""
    rows = small_rows(40)
    rows[3] = "7.5,=A1,1"
    rows[4] = "7.5,'=A1,1"
    prepared = accepted(csv_of(SMALL_HEADER, rows), small_contract(formula_policy="neutralise"))
    assert prepared.rows_dropped == {"duplicate": 1}
    assert next(w for w in prepared.warnings if w.code == "duplicate_rows").rows == [5]


def test_declared_categories_are_checked_on_the_neutralised_values():
    """Neutralising "=A1" gives "'=A1", which the file also holds: the two merge into one value, and
    the declared categories are checked against what is stored (an unknown one is refused naming its
    rows, not a crash)."""
    colour = ColumnSpec(name="colour", kind=ColumnKind.CATEGORICAL, categories=["red", "white", "rose", "'=A1"])
    columns = [ColumnSpec(name="x", kind=ColumnKind.NUMERIC), colour, ColumnSpec(name="y", kind=ColumnKind.NUMERIC)]
    contract = small_contract(formula_policy="neutralise", columns=columns)
    rows = small_rows(40)
    rows[3] = "7.5,=A1,1"
    rows[4] = "8.5,'=A1,1"
    prepared = accepted(csv_of(SMALL_HEADER, rows), contract)
    stored = set()
    for split in ("train", "validation", "test"):
        stored |= set(split_table(prepared, split).column("colour").to_pylist())
    assert stored == {"red", "white", "rose", "'=A1"}
    rows[9] = "9.5,=B2,0"
    rows[20] = "1.5,blue,0"
    result = refused(csv_of(SMALL_HEADER, rows), contract)
    unknown = problem(result, "unknown_category", "colour")
    assert unknown.rows == [10, 21] and "'=B2" in unknown.message and "blue" in unknown.message


def test_a_part_larger_than_its_estimate_is_written_all_the_same(monkeypatch):
    from dataprep import writing

    expected = accepted(wine_bytes())
    monkeypatch.setattr(writing, "_capacity", lambda table: 64)  # every part overflows its first buffer
    again = accepted(wine_bytes())
    assert [(o.relative_key, o.sha256) for o in again.objects] == [(o.relative_key, o.sha256) for o in expected.objects]
    assert split_table(again, "train").equals(split_table(expected, "train"))


def test_writing_hands_every_object_to_storage_with_the_manifest_last(monkeypatch):
    from dataprep import writing

    monkeypatch.setattr(writing, "PART_ROWS", 40)  # several parts, written two at a time
    prepared = accepted(wine_bytes())
    stored: list[tuple[str, bytes]] = []

    def put(obj):
        body = bytes(memoryview(obj.body))  # a part's body is only valid until put returns
        assert hashlib.sha256(body).hexdigest() == obj.sha256
        stored.append((obj.relative_key, body))

    manifest = prepared.write(put)
    keys = [key for key, _ in stored]
    assert keys[-2:] == ["stats.json", "manifest.json"]
    assert sorted(keys[:-2]) == sorted(key for key, _ in prepared.parts) and len(prepared.parts) > 3
    files = json.loads(bytes(manifest.body))["files"]
    assert files == {key: hashlib.sha256(body).hexdigest() for key, body in stored[:-1]}
    assert bytes(manifest.body) == bytes(prepared.manifest().body) == stored[-1][1]
    assert "serialise" in prepared.timings
