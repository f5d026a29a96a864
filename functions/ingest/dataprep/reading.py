"""Reading an uploaded CSV with pyarrow.

Two readers share one definition of a row (docs/ingest.md, "Rows"):
- `read_typed`: the fast path. Multi-threaded, columns converted straight to their contract types.
  Any structural problem (a row of the wrong width, invalid UTF-8, a cell that is not a number)
  makes it raise `pyarrow.ArrowInvalid`; pyarrow does not say which rows, so the caller then runs
- `read_raw`: the diagnostic path. Single-threaded, every column as bytes, rows of the wrong width
  collected with their numbers instead of raising; the caller decodes and converts each column,
  naming the rows that fail.

Row numbers are 1-based data rows: the header is not counted, nor are blank lines (both readers
skip them). Within a file without blank lines, data row n is the spreadsheet's row n + 1.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from dataprep.problems import ProblemLog, sample_values

HEADER_PEEK_BYTES = 1 << 20
SAMPLE_BYTES = 4 << 20  # read ahead of the parse: the header, and a sample to infer column kinds from
BLOCK_SIZE = 1 << 22  # rows per chunk of a column: fewer, larger chunks for the numpy work that follows
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
FORMULA_PATTERN = r"^[=+\-@\t\r]"
# What Arrow's float parser accepts (case-insensitive): decimal and scientific notation, inf,
# infinity and nan with an optional sign. Nothing else is a number: no spaces, no thousands separators.
NUMBER_PATTERN = r"^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity|nan)$"

_UTF16_32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def synthetic_names(count: int) -> list[str]:
    """Positional column names handed to pyarrow, so duplicate or odd header names cannot confuse it."""
    return [f"c{i}" for i in range(count)]


class PrefixedStream(io.RawIOBase):
    """The bytes already read to look at the header, followed by the rest of the stream.

    A read returns the bytes asked for unless the stream ends: pyarrow takes a short read for the end
    of the file, and a network stream (urllib3) may return fewer bytes than asked before its end."""

    def __init__(self, prefix: bytes, rest: BinaryIO | io.RawIOBase) -> None:
        super().__init__()
        self._prefix = memoryview(prefix)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            parts = [bytes(self._prefix)]
            self._prefix = self._prefix[len(self._prefix) :]
            while chunk := self._rest.read(BLOCK_SIZE):
                parts.append(chunk)
            return b"".join(parts)
        parts = []
        if self._prefix:
            parts.append(bytes(self._prefix[:size]))
            self._prefix = self._prefix[len(parts[0]) :]
            size -= len(parts[0])
        while size > 0:
            chunk = self._rest.read(size)
            if not chunk:
                break
            parts.append(chunk)
            size -= len(chunk)
        return b"".join(parts)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def peek(stream: BinaryIO, limit: int = SAMPLE_BYTES) -> bytes:
    """The first `limit` bytes of the stream (fewer at EOF)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_sample(prefix: bytes, column_count: int) -> pa.Table | None:
    """The complete rows of `prefix` as text, to infer column kinds from; None when they do not
    parse (the caller then infers from the whole file)."""
    end = prefix.rfind(b"\n")
    if end < 0:
        return None
    try:
        read, parse, convert = _options([pa.string()] * column_count, threads=False)
        return pacsv.read_csv(pa.BufferReader(prefix[: end + 1]), read, parse, convert)
    except pa.ArrowInvalid:
        return None


def parse_header(prefix: bytes, log: ProblemLog) -> list[str] | None:
    """The column names from the first line, or None (with problems logged) when there are none."""
    if prefix.startswith(_UTF16_32_BOMS):
        log.add("not_utf8", "the file is encoded as UTF-16 or UTF-32; save it as 'CSV UTF-8'")
        return None
    body = prefix.removeprefix(codecs.BOM_UTF8)
    if not body.strip():
        log.add("empty_file", "the file is empty: expected a header line and data rows")
        return None
    line, newline, _ = body.partition(b"\n")
    if not newline and len(line) >= HEADER_PEEK_BYTES:
        log.add("header_too_long", f"no line break in the first {HEADER_PEEK_BYTES} bytes: is this a CSV file?")
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        log.add("not_utf8", f"the header line is not valid UTF-8 (byte {exc.start}); save the file as 'CSV UTF-8'")
        return None
    names = [name.strip() for name in next(csv.reader([text.rstrip("\r")]), [])]
    if len(names) < 2:
        log.add("too_few_columns", f"the header names {len(names)} column(s): a dataset needs features and a target")
        return None
    ok = True
    for position, name in enumerate(names, start=1):
        if not name:
            log.add("blank_column_name", f"column {position} of the header has no name")
            ok = False
        elif name.startswith(FORMULA_PREFIXES):
            log.add("formula", f"column {position} is named {name!r}, which a spreadsheet would execute", column=name)
            ok = False
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            log.add("duplicate_column", f"the header names column {name!r} more than once", column=name)
            ok = False
        seen.add(name)
    return names if ok else None


def _options(
    types: list[pa.DataType], *, threads: bool
) -> tuple[pacsv.ReadOptions, pacsv.ParseOptions, pacsv.ConvertOptions]:
    names = synthetic_names(len(types))
    read = pacsv.ReadOptions(use_threads=threads, block_size=BLOCK_SIZE, skip_rows=1, column_names=names)
    # A quoted cell may span lines. The threaded fast path does not look for that (it would cost it a
    # third of its speed): when a block boundary falls inside such a cell the read fails and the
    # single-threaded diagnostic read, which allows it, takes over (tested).
    parse = pacsv.ParseOptions(newlines_in_values=not threads, ignore_empty_lines=True)
    convert = pacsv.ConvertOptions(
        column_types=dict(zip(names, types, strict=True)),
        null_values=[""],
        strings_can_be_null=True,
        quoted_strings_can_be_null=True,
        check_utf8=True,
    )
    return read, parse, convert


def read_typed(stream: BinaryIO | io.RawIOBase, types: list[pa.DataType]) -> pa.Table:
    """The fast path. Raises pyarrow.ArrowInvalid on any structural problem (see module doc)."""
    read, parse, convert = _options(types, threads=True)
    return pacsv.read_csv(stream, read_options=read, parse_options=parse, convert_options=convert)


@dataclass
class RawRead:
    """Every column as bytes (empty cells are null), with the data row number of each table row."""

    table: pa.Table
    row_numbers: npt.NDArray[np.int64]
    wrong_width: list[tuple[int, int]] = field(default_factory=list)  # (data row, cells found)


def read_raw(stream: BinaryIO, column_count: int) -> RawRead:
    wrong: list[tuple[int, int]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # pyarrow numbers rows from 1 with the header as row 1, skipping blank lines
        wrong.append(((row.number or 0) - 1, row.actual_columns))
        return "skip"

    read, parse, convert = _options([pa.binary()] * column_count, threads=False)
    parse.invalid_row_handler = on_invalid
    table = pacsv.read_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
    total = table.num_rows + len(wrong)
    skipped = np.array(sorted(r for r, _ in wrong), dtype=np.int64)
    numbers = np.setdiff1d(np.arange(1, total + 1, dtype=np.int64), skipped, assume_unique=True)
    return RawRead(table=table, row_numbers=numbers, wrong_width=wrong)


def decode_utf8(
    column: pa.Array, name: str, row_numbers: npt.NDArray[np.int64], log: ProblemLog
) -> tuple[pa.Array, npt.NDArray[np.bool_]]:
    """Bytes to text. Cells that are not UTF-8 are logged and become null; returns (text, bad mask)."""
    try:
        return column.cast(pa.string()), np.zeros(len(column), dtype=bool)
    except pa.ArrowInvalid:
        pass
    bad = np.zeros(len(column), dtype=bool)
    texts: list[str | None] = []
    for i, value in enumerate(column.to_pylist()):
        if value is None:
            texts.append(None)
            continue
        try:
            texts.append(value.decode("utf-8"))
        except UnicodeDecodeError:
            bad[i] = True
            texts.append(None)
    rows = row_numbers[bad]
    log.add_rows(
        "not_utf8",
        f"column {name!r} has {rows.size} cell(s) that are not valid UTF-8; save the file as 'CSV UTF-8'",
        rows,
        column=name,
    )
    return pa.array(texts, type=pa.string()), bad


def is_formula(text: pa.Array) -> npt.NDArray[np.bool_]:
    """Cells a spreadsheet would execute: starting with =, +, -, @, tab or CR and not a number."""
    starts = pc.match_substring_regex(text, FORMULA_PATTERN)
    if not pc.any(starts).as_py():
        return np.zeros(len(text), dtype=bool)
    number = pc.match_substring_regex(text, NUMBER_PATTERN, ignore_case=True)
    mask = pc.and_(starts, pc.invert(number))
    return np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def parse_numbers(
    text: pa.Array, name: str, row_numbers: npt.NDArray[np.int64], log: ProblemLog
) -> tuple[pa.Array, npt.NDArray[np.bool_]]:
    """Text to float64. Cells that are not numbers are logged (as formulas when they look like one)
    and become null; returns (numbers, bad mask)."""
    try:
        return text.cast(pa.float64()), np.zeros(len(text), dtype=bool)
    except pa.ArrowInvalid:
        pass
    number = pc.match_substring_regex(text, NUMBER_PATTERN, ignore_case=True)
    bad = np.asarray(pc.invert(number).fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    formula = bad & is_formula(text)
    other = bad & ~formula
    values = text.to_pylist()
    if formula.any():
        log.add_rows(
            "formula",
            f"column {name!r} holds numbers, but {int(formula.sum())} cell(s) start with =, +, -, @, tab or CR "
            f"and are not numbers: a spreadsheet would execute them (e.g. "
            f"{sample_values(v for v, f in zip(values, formula, strict=True) if f)})",
            row_numbers[formula],
            column=name,
        )
    if other.any():
        log.add_rows(
            "wrong_type",
            f"column {name!r} holds numbers, but {int(other.sum())} cell(s) are not numbers (e.g. "
            f"{sample_values(v for v, o in zip(values, other, strict=True) if o)})",
            row_numbers[other],
            column=name,
        )
    cleaned = pc.if_else(pa.array(bad), pa.scalar(None, pa.string()), text)
    return cleaned.cast(pa.float64()), bad
