"""Row hashes, duplicate removal, split thresholds, content hash, histogram and header parsing."""

from __future__ import annotations

import hashlib
import io
import itertools
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pytest
from dataprep.contract import check_header, infer_task, pick_target, schema_hash
from dataprep.hashing import NULL_WORD, content_sha256, order_rows, row_hashes, split_thresholds
from dataprep.problems import ProblemLog
from dataprep.profile import QUANTILES, histogram, quantiles
from dataprep.reading import PrefixedStream, parse_header
from hypothesis import given, settings
from hypothesis import strategies as st
from ingest_helpers import small_contract

from lepton.data.models import ColumnKind, SplitFractions, Task

finite = st.floats(allow_nan=False, allow_infinity=False)


MASK = 2**64 - 1


def reference_row_hash(row: tuple[float | str | None, ...]) -> int:
    """docs/contracts.md section 1, written out with Python integers, independently of the numpy code."""

    def word(value: float | str | None) -> int:
        if value is None:
            return 0x7FF4000000000001
        if isinstance(value, str):
            return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "little")
        return struct.unpack("<Q", struct.pack("<d", value + 0.0))[0]

    h = 0x243F6A8885A308D3
    for value in row:
        h ^= word(value)
        h = (h * 0x9E3779B97F4A7C15) & MASK
        h ^= h >> 32
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & MASK
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & MASK
    return h ^ (h >> 33)


def test_the_row_hash_is_pinned():
    """The definition is normative: changing it silently would change every dataset id and split."""
    columns = [pa.array([1.5, -0.0, None]), pa.array(["red", None, "white"]), pa.array([0.0, 1.0, 2.0])]
    assert [f"{h:016x}" for h in row_hashes(columns)] == ["04bf92a085144b40", "ad317add1b18d00c", "99d3e8601b424ac1"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.none() | finite, st.none() | st.text(max_size=8), finite), min_size=1, max_size=30))
def test_the_row_hash_follows_its_documented_definition(rows):
    columns = [pa.array([r[i] for r in rows], type=t) for i, t in enumerate((pa.float64(), pa.string(), pa.float64()))]
    assert [int(h) for h in row_hashes(columns)] == [reference_row_hash(r) for r in rows]


def test_negative_zero_is_zero_and_an_empty_cell_is_its_own_value():
    [zero, negative_zero, empty] = row_hashes([pa.array([0.0, -0.0, None])])
    assert zero == negative_zero and empty != zero
    assert row_hashes([pa.array([None], pa.float64())])[0] == row_hashes([pa.array([None], pa.string())])[0]
    assert np.float64(np.nan).view(np.uint64) != NULL_WORD


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=3, max_size=3), st.integers(0, 2), finite, st.text(max_size=5), st.text(max_size=5))
def test_rows_differing_in_one_cell_never_share_a_hash(values, position, other, text, other_text):
    changed = list(values)
    changed[position] = other
    left = [pa.array([v]) for v in values] + [pa.array([text])]
    right = [pa.array([v]) for v in changed] + [pa.array([other_text])]
    same = (np.float64(values[position]) + 0.0).tobytes() == (np.float64(other) + 0.0).tobytes() and text == other_text
    assert (row_hashes(left)[0] == row_hashes(right)[0]) == same


def test_chunked_and_dictionary_columns_hash_like_plain_ones():
    plain = [pa.array([1.0, 2.0, None, 4.0]), pa.array(["a", None, "b", "a"])]
    chunked = [pa.chunked_array([[1.0, 2.0], [None, 4.0]]), pa.array(["a", None, "b", "a"]).dictionary_encode()]
    assert list(row_hashes(plain)) == list(row_hashes(chunked))


def test_split_thresholds_follow_the_fractions():
    t1, t2 = split_thresholds(SplitFractions(train=0.7, validation=0.15, test=0.15))
    assert t1 == int(0.7 * 2**64) and t2 == int(0.85 * 2**64)
    assert split_thresholds(SplitFractions(train=0.8, validation=0.0, test=0.2)) == (int(0.8 * 2**64),) * 2


def test_the_split_is_close_to_the_fractions_on_many_rows():
    rng = np.random.default_rng(3)
    columns = [pa.array(rng.normal(size=20_000)), pa.array(rng.integers(0, 3, 20_000).astype(float))]
    ordering = order_rows(columns, row_hashes(columns), np.arange(20_000), SplitFractions())
    shares = {s: ordering.rows(s) / 20_000 for s in ("train", "validation", "test")}
    assert shares == pytest.approx({"train": 0.7, "validation": 0.15, "test": 0.15}, abs=0.015)


def test_a_hash_collision_never_drops_a_distinct_row():
    columns = [pa.array([1.0, 2.0, 1.0, 3.0]), pa.array(["a", "b", "a", "a"])]
    colliding = np.zeros(4, dtype=np.uint64)  # every row the same hash
    ordering = order_rows(columns, colliding, np.arange(4), SplitFractions())
    assert sorted(ordering.order.tolist()) == [0, 1, 3] and ordering.duplicates.tolist() == [2]


def test_the_content_hash_ignores_row_order_but_not_the_schema():
    columns = [pa.array([1.0, 2.0, 3.0, 4.0]), pa.array([0.0, 1.0, 0.0, 1.0])]
    hashes = row_hashes(columns)
    forward = order_rows(columns, hashes, np.arange(4), SplitFractions())
    backward = order_rows(columns, hashes, np.arange(4)[::-1].copy(), SplitFractions())
    schema = schema_hash(small_contract())
    assert content_sha256(schema, forward.hashes) == content_sha256(schema, backward.hashes)
    other_schema = schema_hash(small_contract(task=Task.REGRESSION))
    assert other_schema != schema
    assert content_sha256(other_schema, forward.hashes) != content_sha256(schema, forward.hashes)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(finite.filter(lambda v: abs(v) <= 1e100), st.integers(-5, 5).map(float)), min_size=1, max_size=300
    )
)
def test_the_histogram_matches_numpy(values):
    array = np.array(values, dtype=np.float64)
    counts, edges = histogram(array, float(array.min()), float(array.max()))
    assert sum(counts) == array.size and all(b > a for a, b in itertools.pairwise(edges))
    try:
        expected_counts, expected_edges = np.histogram(array, bins=10)
    except ValueError:  # numpy cannot make 10 bins of a constant this large; ours widens the range
        return
    assert counts == expected_counts.tolist() and edges == expected_edges.tolist()


@pytest.mark.parametrize(
    ("names", "target"),
    [
        (["a", "b", "target"], "target"),
        (["Label", "a", "b"], "Label"),
        (["y", "a", "label"], "label"),
        (["a", "b"], "b"),
    ],
)
def test_the_target_is_named_target_label_or_y_else_the_last_column(names, target):
    assert pick_target(names) == target


@pytest.mark.parametrize(
    ("values", "kind", "task"),
    [
        ([0.0, 1.0, 2.0, 1.0], ColumnKind.NUMERIC, Task.CLASSIFICATION),
        ([float(v) for v in range(21)], ColumnKind.NUMERIC, Task.REGRESSION),  # whole but too many distinct
        ([0.5, 1.0], ColumnKind.NUMERIC, Task.REGRESSION),  # fractional
        (["cat", "dog"], ColumnKind.CATEGORICAL, Task.CLASSIFICATION),
    ],
)
def test_the_task_rule(values, kind, task):
    assert infer_task(pa.array(values), kind) is task


def test_schema_drift_names_every_differing_column():
    log = ProblemLog()
    assert not check_header(["colour", "x", "z"], small_contract(), log)
    assert [(p.code, p.column) for p in log.problems] == [("missing_column", "y"), ("unexpected_column", "z")]
    assert check_header(["y", "colour", "x"], small_contract(), ProblemLog())  # order does not matter


def test_header_names_are_trimmed_and_may_be_quoted():
    log = ProblemLog()
    assert parse_header(b'"mean radius", texture ,"a,b"\r\n1,2,3\n', log) == ["mean radius", "texture", "a,b"]
    assert not log


class _Trickle(io.RawIOBase):
    """A stream that returns at most 3 bytes per read, as a network stream may."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._data.read(3 if size < 0 else min(size, 3))


def test_the_prefixed_stream_fills_every_read_from_a_short_reading_source():
    stream = PrefixedStream(b"head,", _Trickle(b"0123456789" * 10))  # type: ignore[arg-type]
    assert stream.read(3) == b"hea"
    assert stream.read(7) == b"d,01234"  # the rest of the prefix and the source, not a short read
    assert stream.read(-1) == ("56789" + "0123456789" * 9).encode()
    assert stream.read(5) == b""


def test_columns_chunked_at_different_rows_hash_like_plain_ones(monkeypatch):
    from dataprep import hashing

    monkeypatch.setattr(hashing, "BLOCK_ROWS", 3)  # blocks spanning chunks of either column
    rng = np.random.default_rng(5)
    numbers, other = rng.normal(size=20), rng.normal(size=20)
    text = [str(v) for v in rng.integers(0, 4, 20)]
    plain = [pa.array(numbers), pa.array(text), pa.array(other)]
    chunked = [
        pa.chunked_array([numbers[:7], numbers[7:8], numbers[8:]]),
        pa.chunked_array([text[:2], text[2:]]).dictionary_encode(),
        pa.chunked_array([other[:11], other[11:]]),
    ]
    assert list(row_hashes(chunked)) == list(row_hashes(plain))
    with ThreadPoolExecutor(max_workers=3) as pool:
        assert list(row_hashes(chunked, pool, runs=3)) == list(row_hashes(plain))
    expected = [reference_row_hash(r) for r in zip(numbers, text, other, strict=True)]
    assert [int(h) for h in row_hashes(plain)] == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(finite.filter(lambda v: abs(v) <= 1e100) | st.integers(-3, 3).map(float), min_size=1, max_size=200))
def test_the_quantiles_are_numpys(values):
    array = np.array(values, dtype=np.float64)
    assert quantiles(array).tolist() == np.quantile(array, QUANTILES).tolist()
