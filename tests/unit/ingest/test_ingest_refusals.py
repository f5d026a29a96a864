"""Every kind of bad upload is refused with problems that name the rows and columns to fix."""

from __future__ import annotations

import codecs

import pytest
from ingest_helpers import (
    SMALL_HEADER,
    accepted,
    csv_of,
    problem,
    refused,
    small_contract,
    small_rows,
    split_table,
    wine_lines,
)

from lepton.data.models import MAX_LISTED_ROWS, ColumnKind, ColumnSpec, Task


def with_rows(changes: dict[int, str], n: int = 40) -> bytes:
    """The small dataset with data rows replaced (keys are 1-based data row numbers)."""
    rows = small_rows(n)
    for number, row in changes.items():
        rows[number - 1] = row
    return csv_of(SMALL_HEADER, rows)


@pytest.mark.parametrize("data", [b"", b"   \n\n", b"\xef\xbb\xbf"])
def test_an_empty_file(data):
    assert problem(refused(data), "empty_file").message.startswith("the file is empty")


def test_a_header_without_rows():
    result = refused(b"x,colour,y\n")
    assert [p.code for p in result.problems] == ["header_only"] and result.rows_in == 0


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("x", "too_few_columns"),
        ("x,,y", "blank_column_name"),
        ("x,x,y", "duplicate_column"),
        ("x,=cmd|' /C calc'!A0,y", "formula"),
    ],
)
def test_a_bad_header(header, code):
    assert problem(refused(csv_of(header, ["1,2,3"] * 30)), code)


def test_utf16_is_refused_with_a_hint():
    data = codecs.BOM_UTF16_LE + csv_of(SMALL_HEADER, small_rows()).decode().encode("utf-16-le")
    assert "CSV UTF-8" in problem(refused(data), "not_utf8").message


def test_a_cell_that_is_not_utf8_is_named_by_row_and_column():
    data = with_rows({6: "1.0,caf\xe9,1"}).replace("caf\xe9".encode(), b"caf\xe9")  # latin-1 byte
    found = problem(refused(data), "not_utf8", "colour")
    assert found.rows == [6] and found.row_count == 1


def test_missing_and_unexpected_columns_are_schema_drift():
    rows = [f"{r},extra" for r in small_rows()]
    result = refused(csv_of("x,colour,label,notes", rows), small_contract())
    assert problem(result, "missing_column", "y")
    assert "not know" in problem(result, "unexpected_column", "label").message
    assert problem(result, "unexpected_column", "notes")


def test_a_later_upload_is_checked_against_the_inferred_contract():
    header, rows = wine_lines()
    contract = accepted(csv_of(header, rows)).contract
    drifted = csv_of(header.replace("alcohol", "ethanol"), rows)
    result = refused(drifted, contract)
    assert problem(result, "missing_column", "alcohol") and problem(result, "unexpected_column", "ethanol")


def test_text_in_a_numeric_column():
    found = problem(refused(with_rows({5: "abc,red,1", 9: "1,5,red,0"}), small_contract()), "wrong_type", "x")
    assert found.rows == [5] and "'abc'" in found.message


def test_rows_of_the_wrong_width_are_listed_and_blank_lines_do_not_count():
    rows = small_rows(40)
    rows[3] = "1.0,red"  # data row 4
    rows[10] = "1.0,red,1,extra"  # data row 11
    rows.insert(6, "")  # a blank line is skipped, not a row
    found = problem(refused(csv_of(SMALL_HEADER, rows), small_contract()), "wrong_width")
    assert found.rows == [4, 11] and "3 cells" in found.message


def test_other_problems_keep_exact_row_numbers_when_rows_have_the_wrong_width():
    rows = small_rows(40)
    rows[1] = "1.0"  # data row 2: wrong width
    rows[7] = "zz,red,1"  # data row 8: not a number
    result = refused(csv_of(SMALL_HEADER, rows), small_contract())
    assert problem(result, "wrong_width").rows == [2]
    assert problem(result, "wrong_type", "x").rows == [8]


def test_nan_where_the_contract_forbids_empty_cells():
    found = problem(refused(with_rows({3: "NaN,red,1", 12: ",white,0"}), small_contract()), "missing_value", "x")
    assert found.rows == [3, 12] and "null_policy" in found.message


def test_nan_is_an_empty_cell_where_the_contract_allows_them():
    contract = small_contract(
        columns=[
            ColumnSpec(name="x", kind=ColumnKind.NUMERIC, nullable=True),
            ColumnSpec(name="colour", kind=ColumnKind.CATEGORICAL),
            ColumnSpec(name="y", kind=ColumnKind.NUMERIC),
        ]
    )
    prepared = accepted(with_rows({3: "nan,red,1"}), contract)
    nulls = {s: split_table(prepared, s).column("x").null_count for s in ("train", "validation", "test")}
    assert sum(nulls.values()) == 1
    x = next(f for f in prepared.stats["features"] if f["name"] == "x")
    assert x["null_count"] == nulls["train"]


@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity"])
def test_infinity_is_refused(value):
    found = problem(refused(with_rows({7: f"{value},red,1"}), small_contract()), "non_finite", "x")
    assert found.rows == [7]


def test_an_empty_target_is_refused():
    assert problem(refused(with_rows({4: "1,red,"}), small_contract()), "missing_value", "y").rows == [4]


@pytest.mark.parametrize("cell", ["=1+2", "@SUM(A1:A9)", "+A1", "-2+3", '"=HYPERLINK(""http://evil"")"', "\tcmd"])
def test_formulas_are_refused_by_default(cell):
    found = problem(refused(with_rows({9: f"1,{cell},0"}), small_contract()), "formula", "colour")
    assert found.rows == [9] and "formula_policy" in found.message


def test_a_formula_in_a_numeric_column_is_named_as_such():
    found = problem(refused(with_rows({2: "=A1*2,red,1"}), small_contract()), "formula", "x")
    assert found.rows == [2]


def test_a_formula_in_a_numeric_column_is_refused_even_when_neutralising():
    result = refused(with_rows({2: "=A1*2,red,1"}), small_contract(formula_policy="neutralise"))
    assert problem(result, "formula", "x").rows == [2]


def test_out_of_range_and_unknown_categories_for_a_declared_contract():
    contract = small_contract(
        columns=[
            ColumnSpec(name="x", kind=ColumnKind.NUMERIC, minimum=-5, maximum=50),
            ColumnSpec(name="colour", kind=ColumnKind.CATEGORICAL, categories=["red", "white", "rose"]),
            ColumnSpec(name="y", kind=ColumnKind.NUMERIC),
        ]
    )
    result = refused(with_rows({3: "-9,red,1", 5: "99,blue,0", 6: "1,green,1"}), contract)
    assert problem(result, "out_of_range", "x").rows == [3, 5]
    unknown = problem(result, "unknown_category", "colour")
    assert unknown.rows == [5, 6] and "'blue'" in unknown.message


def test_a_fractional_class_label():
    found = problem(refused(with_rows({8: "1,red,0.5"}), small_contract()), "wrong_type", "y")
    assert found.rows == [8]


def test_too_few_rows_after_cleaning():
    rows = small_rows(6) * 4  # 24 rows, 6 distinct
    result = refused(csv_of(SMALL_HEADER, rows), small_contract(min_rows=10))
    assert "6 usable row(s) after dropping 18" in problem(result, "too_few_rows").message


def test_a_target_with_a_single_class():
    rows = [f"{i},red,1" for i in range(40)]
    assert problem(refused(csv_of(SMALL_HEADER, rows), small_contract()), "single_class", "y")


def test_a_column_without_values_in_the_training_split():
    contract = small_contract(
        columns=[
            ColumnSpec(name="x", kind=ColumnKind.NUMERIC),
            ColumnSpec(name="colour", kind=ColumnKind.CATEGORICAL, nullable=True),
            ColumnSpec(name="y", kind=ColumnKind.NUMERIC),
        ]
    )
    rows = [f"{i},,{i % 2}" for i in range(40)]
    assert problem(refused(csv_of(SMALL_HEADER, rows), contract), "empty_column", "colour")


def test_row_lists_are_capped_with_the_total_given():
    rows = small_rows(60)
    for i in range(5, 55):
        rows[i] = f"bad{i},red,1"
    found = problem(refused(csv_of(SMALL_HEADER, rows), small_contract()), "wrong_type", "x")
    assert found.rows == list(range(6, 6 + MAX_LISTED_ROWS)) and found.row_count == 50


def test_all_problems_are_reported_at_once():
    result = refused(with_rows({2: "inf,red,1", 3: "1,=x,1", 4: "1,red,"}), small_contract())
    assert {p.code for p in result.problems} == {"non_finite", "formula", "missing_value"}


def test_a_regression_target_that_is_text_cannot_be_declared_numeric():
    contract = small_contract(task=Task.REGRESSION)
    assert problem(refused(with_rows({3: "1,red,high"}), contract), "wrong_type", "y").rows == [3]


def test_numbers_too_large_to_standardise():
    found = problem(refused(with_rows({4: "1e200,red,1"}), small_contract()), "out_of_range", "x")
    assert found.rows == [4] and "too large" in found.message
