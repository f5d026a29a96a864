"""From an uploaded CSV to a cleaned, split and profiled dataset, or to the reasons it is refused.

`prepare` is pure with respect to AWS: it reads the upload through a callable returning a binary
stream and returns in-memory tables; the service (dataprep.service) stores them.
"""

from __future__ import annotations

import mmap
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from dataprep import contract as contracts
from dataprep.hashing import SPLITS, Ordering, content_sha256, order_rows, row_hashes
from dataprep.problems import ProblemLog, sample_values
from dataprep.profile import feature_stats, stats_document, target_stats
from dataprep.reading import (
    PrefixedStream,
    decode_utf8,
    is_formula,
    parse_header,
    parse_numbers,
    peek,
    read_raw,
    read_sample,
    read_typed,
)
from dataprep.writing import (
    STATS,
    CuratedObject,
    Put,
    json_object,
    manifest_object,
    owned,
    part_key,
    part_slices,
    write_parts,
)
from lepton.data.models import (
    ColumnKind,
    ColumnSpec,
    DataContract,
    FormulaPolicy,
    NullPolicy,
    Problem,
    SplitRows,
    Task,
    dataset_id_for,
)

Mask = npt.NDArray[np.bool_]
WORKERS = min(6, max(2, os.cpu_count() or 2))  # Lambda: 6 vCPUs at 10 GB of memory


@dataclass(frozen=True)
class Prepared:
    """An accepted upload, cleaned, split and profiled, ready to be written under
    curated/<project>/<dataset_id>/: `write` serialises it, handing each object to storage as it goes."""

    contract: DataContract
    dataset_id: str
    content_sha256: str
    schema_hash: str
    rows: SplitRows
    stats: dict[str, Any]
    parts: list[tuple[str, pa.Table]]  # relative key -> the part's rows in stored order and types
    rows_in: int
    rows_dropped: dict[str, int]
    warnings: list[Problem]
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase, for logs and the benchmark

    def write(self, put: Put) -> CuratedObject:
        """Hand every object of the dataset to `put`: the parquet parts (serialised in parallel; a
        body is a view of a reused buffer, so `put` must be done with it when it returns), stats.json,
        then manifest.json, which is also returned. Storage in this order leaves a manifest only
        beside a complete dataset."""
        started = time.perf_counter()
        objects = [*write_parts(self.parts, put, WORKERS), self._stats_object()]
        put(objects[-1])
        manifest = self._manifest(objects)
        put(manifest)
        self.timings["serialise"] = round(time.perf_counter() - started, 4)
        return manifest

    @cached_property
    def objects(self) -> list[CuratedObject]:
        """The parquet parts and stats.json, each with bytes of its own (the manifest lists them)."""
        copies: dict[str, CuratedObject] = {}
        write_parts(self.parts, lambda o: copies.__setitem__(o.relative_key, owned(o)), WORKERS)
        return [*(copies[key] for key, _ in self.parts), self._stats_object()]

    def manifest(self) -> CuratedObject:
        return self._manifest(self.objects)

    def _stats_object(self) -> CuratedObject:
        return json_object(STATS, self.stats)

    def _manifest(self, objects: list[CuratedObject]) -> CuratedObject:
        return manifest_object(
            dataset_id=self.dataset_id,
            content_sha256=self.content_sha256,
            schema_hash=self.schema_hash,
            rows=self.rows.model_dump(),
            objects=objects,
        )


@dataclass(frozen=True)
class Refused:
    problems: list[Problem]
    rows_in: int | None = None
    contract: DataContract | None = None


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 4)
        self._last = now


@dataclass
class _Cells:
    """The upload's columns by file column name, their data row numbers and the cells already reported
    as unreadable (not UTF-8, not a number). Numeric columns may stay chunked as pyarrow read them;
    text columns are single arrays, with a dictionary encoding kept for the checks and the hash."""

    names: list[str]
    arrays: dict[str, Any]  # pa.Array | pa.ChunkedArray
    row_numbers: npt.NDArray[np.int64] | None  # None: row i is data row i + 1
    text: bool  # every array is still text (the diagnostic path, or inference fell back to text)
    unreadable: dict[str, Mask] = field(default_factory=dict)
    encoded: dict[str, pa.DictionaryArray] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(next(iter(self.arrays.values())))

    def rows(self, mask: Mask) -> npt.NDArray[np.int64]:
        if self.row_numbers is None:
            return np.flatnonzero(mask).astype(np.int64) + 1
        return self.row_numbers[mask]

    def rows_at(self, indices: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        if self.row_numbers is None:
            return indices.astype(np.int64) + 1
        return self.row_numbers[indices]

    def encode(self, name: str) -> pa.DictionaryArray:
        """A text column dictionary-encoded, each distinct value once in the dictionary."""
        if name not in self.encoded:
            array = self.arrays[name]
            self.encoded[name] = array if pa.types.is_dictionary(array.type) else pc.dictionary_encode(array)
        return self.encoded[name]


def _mask(array: Any) -> Mask:
    return np.asarray(array.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _null_mask(array: Any) -> Mask:
    if not array.null_count:
        return np.zeros(len(array), dtype=bool)
    return _mask(pc.is_null(array))


def _columns(table: pa.Table, names: list[str]) -> dict[str, Any]:
    """The columns by file column name. Numbers stay in the reader's chunks (numpy views of each;
    copying them into one array would touch as much memory again). Text becomes one contiguous array;
    read dictionary-encoded, with one dictionary for the whole column (the reader's are per block)."""
    if any(pa.types.is_dictionary(t) for t in table.schema.types):
        table = table.unify_dictionaries()
    columns: dict[str, Any] = {}
    for i, name in enumerate(names):
        column = table.column(i)
        if pa.types.is_floating(column.type):
            columns[name] = column
        else:
            columns[name] = column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    return columns


def _chunks(column: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return column.chunks if isinstance(column, pa.ChunkedArray) else [column]


def _read(
    open_upload: Callable[[], BinaryIO], contract: DataContract | None, log: ProblemLog
) -> tuple[_Cells, dict[str, ColumnKind]] | None:
    """The upload's cells and each column's kind (the contract's, or inferred)."""
    with closing(open_upload()) as stream:
        prefix = peek(stream)
        names = parse_header(prefix, log)
        if names is None:
            return None
        if contract is not None:
            if not contracts.check_header(names, contract, log):
                return None
            guessed: dict[str, ColumnKind] | None = contracts.contract_kinds(contract)
        else:
            sample = read_sample(prefix, len(names))
            usable = sample is not None and sample.num_rows > 0
            guessed = (
                contracts.infer_kinds(names, [sample.column(i).combine_chunks() for i in range(len(names))])
                if sample is not None and usable
                else None  # no complete row in the sample: read everything as text and infer from it
            )
        types = contracts.kinds_types(names, guessed) if guessed else [pa.string()] * len(names)
        try:
            table = read_typed(PrefixedStream(prefix, stream), types)
            cells = _Cells(names=names, arrays=_columns(table, names), row_numbers=None, text=guessed is None)
            return cells, guessed or contracts.infer_kinds(names, [cells.arrays[n] for n in names])
        except pa.ArrowInvalid:
            pass  # structural problems, or a sample that misled the inference
    if contract is None and guessed is not None:
        with closing(open_upload()) as stream:
            try:
                table = read_typed(stream, [pa.string()] * len(names))
            except pa.ArrowInvalid:
                table = None
        if table is not None:
            cells = _Cells(names=names, arrays=_columns(table, names), row_numbers=None, text=True)
            return cells, contracts.infer_kinds(names, [cells.arrays[n] for n in names])
    with closing(open_upload()) as stream:
        raw = read_raw(stream, len(names))
    if raw.wrong_width:
        rows = [row for row, _ in raw.wrong_width]
        found = sorted({cells for _, cells in raw.wrong_width})
        log.add_rows(
            "wrong_width",
            f"{len(rows)} row(s) do not have the header's {len(names)} cells (found "
            f"{', '.join(map(str, found[:5]))}{', ...' if len(found) > 5 else ''} cells); check for unquoted "
            f"commas, stray quotes or missing cells",
            rows,
        )
    arrays: dict[str, Any] = {}
    unreadable: dict[str, Mask] = {}
    for name, column in _columns(raw.table, names).items():
        arrays[name], unreadable[name] = decode_utf8(column, name, raw.row_numbers, log)
    kinds = contracts.contract_kinds(contract) if contract else contracts.infer_kinds(names, [arrays[n] for n in names])
    cells = _Cells(names=names, arrays=arrays, row_numbers=raw.row_numbers, text=True, unreadable=unreadable)
    return cells, kinds


def _coerce(cells: _Cells, kinds: dict[str, ColumnKind], log: ProblemLog) -> None:
    """Text to the column kinds (numbers to float64), logging cells that are not numbers."""
    if not cells.text:
        return
    row_numbers = cells.row_numbers if cells.row_numbers is not None else np.arange(1, cells.count + 1)
    for name in cells.names:
        if kinds[name] is ColumnKind.NUMERIC:
            numbers, bad = parse_numbers(cells.arrays[name], name, row_numbers, log)
            cells.arrays[name] = numbers
            previous = cells.unreadable.get(name)
            cells.unreadable[name] = bad if previous is None else (bad | previous)
    cells.text = False


@dataclass
class _Cleaning:
    drop: Mask  # rows removed for an empty cell where the contract forbids one
    impute: dict[str, Mask] = field(default_factory=dict)  # feature -> cells to fill from the training split
    warnings: ProblemLog = field(default_factory=ProblemLog)


MAX_MAGNITUDE = 1e100  # sums of squares of up to 1e9 such values stay finite


def _huge(column: pa.Array | pa.ChunkedArray) -> Mask:
    """Finite values too large for the statistics (infinities are reported separately)."""
    extremes = pc.min_max(column).as_py()
    if extremes["min"] is None or max(extremes["max"], -extremes["min"]) <= MAX_MAGNITUDE:
        return np.zeros(len(column), dtype=bool)
    return _mask(pc.and_(pc.greater(pc.abs(column), MAX_MAGNITUDE), pc.is_finite(column)))


def _plain_and_finite(column: pa.Array | pa.ChunkedArray) -> bool:
    """No empty cell, NaN, infinity or magnitude beyond MAX_MAGNITUDE: a minimum and a maximum per
    chunk (NaN when any value is) settle the common case."""
    if column.null_count or len(column) == 0:
        return False
    for chunk in _chunks(column):
        if len(chunk) == 0:
            continue
        values = chunk.to_numpy(zero_copy_only=False)
        low, high = values.min(), values.max()
        if not (np.isfinite(low) and np.isfinite(high) and max(high, -low) <= MAX_MAGNITUDE):
            return False
    return True


def _fractional(column: pa.Array | pa.ChunkedArray, plain: bool) -> Mask:
    """Finite values that are not whole numbers."""
    if plain:
        parts = [chunk.to_numpy(zero_copy_only=False) for chunk in _chunks(column)]
        return np.concatenate([np.floor(v) != v for v in parts]) if parts else np.zeros(0, dtype=bool)
    return _mask(pc.and_(pc.is_finite(column), pc.not_equal(pc.floor(column), column)))


def _check_numeric(spec: ColumnSpec, contract: DataContract, cells: _Cells, log: ProblemLog, plain: bool) -> None:
    """`plain`: _plain_and_finite(the column), which settles most checks."""
    name = spec.name
    column = cells.arrays[name]
    if not plain and pc.all(pc.is_finite(column)).as_py() is False:
        nan = pc.is_nan(column)
        if pc.any(nan).as_py():
            column = pc.if_else(nan, pa.scalar(None, pa.float64()), column)  # NaN is an empty cell
        infinite = pc.is_inf(column)
        if pc.any(infinite).as_py():
            rows = cells.rows(_mask(infinite))
            log.add_rows("non_finite", f"column {name!r} has {rows.size} infinite value(s)", rows, column=name)
    magnitude = np.zeros(0, dtype=bool) if plain else _huge(column)
    if magnitude.any():
        log.add_rows(
            "out_of_range",
            f"column {name!r} has {int(magnitude.sum())} value(s) beyond +/-{MAX_MAGNITUDE:g}, too large to "
            f"standardise",
            cells.rows(magnitude),
            column=name,
        )
    if spec.minimum is not None or spec.maximum is not None:
        outside = np.zeros(len(column), dtype=bool)
        if spec.minimum is not None:
            outside |= _mask(pc.less(column, spec.minimum))
        if spec.maximum is not None:
            outside |= _mask(pc.greater(column, spec.maximum))
        outside &= ~_mask(pc.is_inf(column))
        if outside.any():
            values = np.asarray(column.to_numpy(zero_copy_only=False))[outside]
            log.add_rows(
                "out_of_range",
                f"column {name!r} allows [{spec.minimum}, {spec.maximum}]; {int(outside.sum())} value(s) lie outside "
                f"(e.g. {sample_values(values.tolist())})",
                cells.rows(outside),
                column=name,
            )
    if name == contract.target and contract.task is Task.CLASSIFICATION:
        fractional = _fractional(column, plain)
        if fractional.any():
            values = np.asarray(column.to_numpy(zero_copy_only=False))[fractional]
            log.add_rows(
                "wrong_type",
                f"target {name!r} of a classification task must hold class labels: whole numbers or text, found "
                f"{int(fractional.sum())} fractional value(s) (e.g. {sample_values(values.tolist())})",
                cells.rows(fractional),
                column=name,
            )
    cells.arrays[name] = column


def _check_categorical(
    spec: ColumnSpec, contract: DataContract, cells: _Cells, log: ProblemLog, cleaning: _Cleaning
) -> None:
    """Formulas and declared categories, checked on the distinct values (the dictionary) only."""
    name = spec.name
    encoded = cells.encode(name)
    dictionary = encoded.dictionary
    slots: list[npt.NDArray[np.int64]] = []  # each cell's slot, made when a problem needs its rows

    def rows_with(values: Mask) -> Mask:
        """The cells holding the values `values` marks (a mask over the column's current dictionary)."""
        current = cells.encoded[name]
        if not slots:
            filled = current.indices.fill_null(len(current.dictionary))
            slots.append(np.asarray(filled.to_numpy(zero_copy_only=False), dtype=np.int64))
        return np.append(values, False)[slots[0]]  # the extra slot is the empty cell

    formula_values = is_formula(dictionary)
    if formula_values.any():
        formula = rows_with(formula_values)
        examples = sample_values(dictionary.filter(pa.array(formula_values)).to_pylist())
        if contract.formula_policy is FormulaPolicy.REJECT:
            log.add_rows(
                "formula",
                f"column {name!r} has {int(formula.sum())} cell(s) starting with =, +, -, @, tab or CR that a "
                f"spreadsheet would execute (e.g. {examples}); remove them, or declare the contract's "
                f"formula_policy 'neutralise'",
                cells.rows(formula),
                column=name,
            )
        else:
            quoted = pc.if_else(pa.array(formula_values), pc.binary_join_element_wise("'", dictionary, ""), dictionary)
            distinct = pc.dictionary_encode(quoted)  # "=x" quoted may equal a "'=x" already there: keep values unique
            neutralised = pa.DictionaryArray.from_arrays(distinct.indices.take(encoded.indices), distinct.dictionary)
            cells.arrays[name] = cells.encoded[name] = neutralised
            slots.clear()  # a new dictionary (neutralised values may merge with ones already there)
            cleaning.warnings.add_rows(
                "formula_neutralised",
                f"column {name!r}: {int(formula.sum())} cell(s) a spreadsheet would execute were prefixed with a "
                f"single quote (e.g. {examples})",
                cells.rows(formula),
                column=name,
            )
    if spec.categories is not None:
        allowed = pa.array(spec.categories, pa.string())
        unknown_values = _mask(pc.invert(pc.is_in(cells.encoded[name].dictionary, value_set=allowed)))
        if unknown_values.any():
            unknown = rows_with(unknown_values)
            examples = sample_values(cells.encoded[name].dictionary.filter(pa.array(unknown_values)).to_pylist())
            log.add_rows(
                "unknown_category",
                f"column {name!r} allows {sorted(spec.categories)}; {int(unknown.sum())} cell(s) hold other values "
                f"(e.g. {examples})",
                cells.rows(unknown),
                column=name,
            )


def _check_nulls(spec: ColumnSpec, contract: DataContract, cells: _Cells, log: ProblemLog, cleaning: _Cleaning) -> None:
    name = spec.name
    if not cells.arrays[name].null_count:
        return  # no empty cell
    empty = _null_mask(cells.arrays[name])
    if name in cells.unreadable:
        empty &= ~cells.unreadable[name]  # already reported as unreadable
    if not empty.any() or (spec.nullable and name != contract.target):
        return
    what = "the target" if name == contract.target else "this column"
    if contract.null_policy is NullPolicy.REJECT:
        log.add_rows(
            "missing_value",
            f"column {name!r} has {int(empty.sum())} empty or NaN cell(s), which the contract forbids for {what} "
            f"(null_policy 'reject')",
            cells.rows(empty),
            column=name,
        )
    elif name == contract.target or contract.null_policy is NullPolicy.DROP_ROW:
        cleaning.drop |= empty  # a target is never invented, whatever the policy
    else:
        cleaning.impute[name] = empty


def _validate(cells: _Cells, contract: DataContract, log: ProblemLog, pool: Executor) -> _Cleaning:
    """Every column against its spec, in contract order (so problems are reported in that order). The
    pass that clears most numeric columns at once (no empty, NaN, infinite or huge value) runs on the
    pool first."""
    numeric = [s.name for s in contract.columns if s.kind is ColumnKind.NUMERIC]
    plain = dict(zip(numeric, pool.map(lambda name: _plain_and_finite(cells.arrays[name]), numeric), strict=True))
    cleaning = _Cleaning(drop=np.zeros(cells.count, dtype=bool))
    for spec in contract.columns:
        if spec.kind is ColumnKind.NUMERIC:
            _check_numeric(spec, contract, cells, log, plain[spec.name])
        else:
            _check_categorical(spec, contract, cells, log, cleaning)
        _check_nulls(spec, contract, cells, log, cleaning)
    return cleaning


def _impute(columns: dict[str, pa.Array], cleaning: _Cleaning, cells: _Cells, ordering: Ordering) -> None:
    """Fill a forbidden empty cell from the training split: median for numbers, most frequent value
    (smallest on ties) for categories. `columns` hold every row in file order; changed in place."""
    train_rows = pa.array(ordering.order[slice(*ordering.bounds["train"])])
    for name, empty in cleaning.impute.items():
        filled = empty[ordering.order]
        if not filled.any():
            continue
        column = columns[name]
        text = pa.types.is_dictionary(column.type)
        plain = column.dictionary_decode() if text else column
        train = plain.take(train_rows).drop_null()
        if len(train) == 0:
            continue  # reported as empty_column
        if pa.types.is_floating(plain.type):
            value: Any = float(np.median(np.asarray(train.to_numpy(), dtype=np.float64)))
        else:
            counts = pc.value_counts(train)
            pairs = zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
            value = min(pairs, key=lambda p: (-p[1], p[0]))[0]
        plain = pc.fill_null(plain, value)
        columns[name] = pc.dictionary_encode(plain) if text else plain
        cleaning.warnings.add_rows(
            "imputed",
            f"column {name!r}: {int(filled.sum())} empty cell(s) filled with {value!r} from the training split",
            cells.rows_at(ordering.order[filled]),
            column=name,
        )


def _empty_in_train(columns: dict[str, pa.Array], contract: DataContract, ordering: Ordering, log: ProblemLog) -> None:
    train = ordering.order[slice(*ordering.bounds["train"])]
    for spec in contract.features:
        column = columns[spec.name]
        if column.null_count and _null_mask(column)[train].all():
            log.add(
                "empty_column",
                f"column {spec.name!r} has no value in the training split: nothing to learn or standardise from",
                column=spec.name,
            )


def _slots(encoded: pa.DictionaryArray) -> npt.NDArray[np.int32]:
    """Each cell's index into the dictionary; an empty cell gets the extra slot len(dictionary)."""
    indices = encoded.indices
    if indices.null_count:
        indices = indices.fill_null(len(encoded.dictionary))
    return np.asarray(indices.to_numpy(zero_copy_only=False), dtype=np.int32)


def _classes(target: pa.Array, ordering: Ordering) -> list[Any]:
    """The target's distinct values over the kept rows, sorted ascending (a label's index is its
    position), as the parquet column holds them (int64 labels for a numeric target)."""
    everything = ordering.order.size == len(target)  # no row dropped: the kept rows are all rows
    if pa.types.is_dictionary(target.type):
        slots = _slots(target)
        counts = np.bincount(slots if everything else slots[ordering.order], minlength=len(target.dictionary) + 1)
        return sorted(target.dictionary.filter(pa.array(counts[:-1] > 0)).to_pylist())
    kept = target if everything else target.take(pa.array(ordering.order))
    return sorted(int(v) for v in pc.unique(kept.drop_null()).to_pylist())


def _text_in_order(column: pa.Array, order: npt.NDArray[np.int64]) -> pa.DictionaryArray:
    """A text column's kept rows in hash order, dictionary-encoded with exactly the values that occur
    in them, sorted: the same rows give the same dictionary and indices, whatever the file's order
    and whatever other rows it held. The indices are mapped to the sorted dictionary in file order
    (a lookup in a small table) and then put in hash order, both by pyarrow's take (which reads int32
    indices as they are; numpy would first copy them to 64-bit ones)."""
    encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
    size = len(encoded.dictionary)
    slots = _slots(encoded)
    everything = order.size == slots.size  # no row dropped: count the file's rows as they lie
    used = np.flatnonzero(np.bincount(slots if everything else slots[order], minlength=size + 1)[:size])
    values = encoded.dictionary.take(pa.array(used))
    ranks = np.asarray(pc.sort_indices(values), dtype=np.int64)
    remap = np.zeros(size, dtype=np.int32)  # values that no kept row holds keep 0: never taken
    remap[used[ranks]] = np.arange(used.size, dtype=np.int32)
    indices = pa.array(remap).take(encoded.indices).take(pa.array(order))  # an empty cell stays empty
    return pa.DictionaryArray.from_arrays(indices, values.take(pa.array(ranks)))


@dataclass(frozen=True)
class _Placement:
    """Where each kept row goes: `order` lists the kept rows in hash order; `rank` gives each row of
    the file its position in that order (-1 for a row not kept)."""

    order: npt.NDArray[np.int64]
    rank: npt.NDArray[np.int64]

    @classmethod
    def of(cls, ordering: Ordering, rows: int) -> _Placement:
        rank = np.full(rows, -1, dtype=np.int64)
        rank[ordering.order] = np.arange(ordering.order.size, dtype=np.int64)
        return cls(ordering.order, rank)


class _Reserve:
    """Buffers for the numeric columns in hash order, allocated and first touched on a helper thread
    while the rows are checked, hashed and put in order. Freshly allocated memory costs a page fault per
    4 KiB at its first write: writing the reordered columns into untouched buffers made those faults
    about a third of putting them in order (bench/ingest_bench.py). A buffer not yet touched when it is
    wanted is allocated where it is wanted."""

    def __init__(self, helper: Executor) -> None:
        self._helper = helper
        self._lock = threading.Lock()
        self._pending: list[Future[pa.Buffer]] = []

    def start(self, sizes: list[int]) -> None:
        """Begin allocating and touching buffers of these sizes, in this order."""
        with self._lock:
            self._pending += [self._helper.submit(_touched, size) for size in sizes]

    def take(self, size: int) -> pa.Buffer:
        """A buffer of at least `size` bytes: a reserved one if one is large enough, else a new one."""
        with self._lock:
            future = self._pending.pop(0) if self._pending else None
        if future is not None and (future.done() or not future.cancel()):
            buffer = future.result()
            if buffer.size >= size:
                return buffer
        return pa.allocate_buffer(size)

    def close(self) -> None:
        """Drop the buffers not taken (those not yet started are never allocated)."""
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.cancel()


def _touched(size: int) -> pa.Buffer:
    # From pyarrow's memory pool rather than a new numpy array: numpy advises transparent huge pages for
    # arrays of 4 MB and more, and where the kernel compacts memory to serve such faults (defrag=madvise,
    # as on this project's machines) first touching them cost more kernel time than the copy itself
    # (measured with bench/ingest_bench.py). One write a page faults the whole buffer in.
    buffer = pa.allocate_buffer(size)
    np.frombuffer(buffer, dtype=np.uint8)[:: mmap.PAGESIZE] = 0
    return buffer


def _reserved_sizes(cells: _Cells, contract: DataContract) -> list[int]:
    """The byte sizes _in_order will want for the numeric columns it scatters (no empty cell), in the
    order _split_and_profile asks for them; every row counted (rows dropped later only shrink them)."""
    return [
        cells.count * 8
        for spec in _by_cost(contract)
        if spec.kind is ColumnKind.NUMERIC and not cells.arrays[spec.name].null_count
    ]


def _by_cost(contract: DataContract) -> list[ColumnSpec]:
    """The columns in the order _split_and_profile hands them to the pool: the dearest first (text, then
    the target), so that the pool's threads finish together."""
    specs = contracts.output_order(contract)
    return sorted(specs, key=lambda s: 0 if s.kind is ColumnKind.CATEGORICAL else 1 if s.name == contract.target else 2)


def _in_order(
    column: pa.Array | pa.ChunkedArray, placement: _Placement, stored: pa.DataType, reserve: _Reserve
) -> pa.Array:
    """A column's kept rows in hash order, in its stored type (text dictionary-encoded). Numbers are
    scattered chunk by chunk to their places (reading each chunk once, in file order), into a buffer
    from `reserve`."""
    if pa.types.is_dictionary(column.type) or pa.types.is_string(column.type):
        return _text_in_order(column, placement.order)
    if column.null_count:
        taken = column.take(pa.array(placement.order))
        taken = taken.combine_chunks() if isinstance(taken, pa.ChunkedArray) else taken
        return taken.cast(stored) if taken.type != stored else taken
    size = placement.order.size
    buffer = reserve.take(size * 8)
    # class labels: whole numbers (checked), stored as int64 (numpy casts them as it scatters them)
    out = np.frombuffer(buffer, dtype=np.int64 if pa.types.is_integer(stored) else np.float64, count=size)
    everything = placement.order.size == placement.rank.size
    start = 0
    for chunk in _chunks(column):
        values = chunk.to_numpy(zero_copy_only=False)
        places = placement.rank[start : start + len(values)]
        if everything:
            out[places] = values
        else:
            kept = places >= 0
            out[places[kept]] = values[kept]
        start += len(values)
    return pa.Array.from_buffers(stored, size, [None, buffer])


def _split_and_profile(
    columns: dict[str, Any],
    ordering: Ordering,
    contract: DataContract,
    pool: Executor,
    reserve: _Reserve,
    classes: list[Any],
) -> tuple[dict[str, int], dict[str, dict[str, Any]], list[tuple[str, pa.Table]]]:
    """Every kept row in hash order (the splits are consecutive runs of it) cut into the parquet
    parts, and each column's profile (stats.json's entry) from the training split. One task per column
    on the pool puts the column in order and profiles its training rows while they are still in the
    CPU's cache (numpy and pyarrow release the GIL)."""
    rows = {split: ordering.rows(split) for split in SPLITS}
    train_rows = ordering.rows("train")
    kinds = contracts.contract_kinds(contract)
    schema = contracts.stored_schema(contract)
    placement = _Placement.of(ordering, len(next(iter(columns.values()))))

    def order_and_profile(stored: pa.Field) -> tuple[pa.Array, dict[str, Any]]:
        ordered = _in_order(columns[stored.name], placement, stored.type, reserve)
        train = ordered.slice(0, train_rows)
        if stored.name == contract.target:
            return ordered, target_stats(contract.task, train, classes)
        return ordered, feature_stats(stored.name, kinds[stored.name], train)

    fields = {f.name: f for f in schema}
    tasks = {spec.name: pool.submit(order_and_profile, fields[spec.name]) for spec in _by_cost(contract)}
    done = [tasks[name].result() for name in schema.names]
    columns.clear()  # the file-order columns are no longer needed
    table = pa.Table.from_arrays([column for column, _ in done], schema=schema)
    parts = []
    for split in SPLITS:
        start, _ = ordering.bounds[split]
        for i, (offset, length) in enumerate(part_slices(ordering.rows(split))):
            parts.append((part_key(split, i), table.slice(start + offset, length)))
    profiles = dict(zip(schema.names, (profile for _, profile in done), strict=True))
    return rows, profiles, parts


def prepare(open_upload: Callable[[], BinaryIO], contract: DataContract | None, *, project: str) -> Prepared | Refused:
    """Read, check, clean, split, profile and serialise one upload. `open_upload` returns a fresh binary
    stream each call (the diagnostic path reads the upload a second time). Without a contract one is
    inferred (the caller records it when the upload is accepted)."""
    # the helper thread does work that need not wait for the pool: buffers for later, the content hash
    with ThreadPoolExecutor(max_workers=WORKERS) as pool, ThreadPoolExecutor(max_workers=1) as helper:
        reserve = _Reserve(helper)
        try:
            return _prepare(open_upload, contract, project, pool, helper, reserve)
        finally:
            reserve.close()


def _prepare(
    open_upload: Callable[[], BinaryIO],
    contract: DataContract | None,
    project: str,
    pool: Executor,
    helper: Executor,
    reserve: _Reserve,
) -> Prepared | Refused:
    log = ProblemLog()
    clock = _Clock()
    read = _read(open_upload, contract, log)
    clock.lap("read")
    if read is None:
        return Refused(log.problems, contract=contract)
    cells, kinds = read
    rows_in = cells.count + sum(p.row_count or 0 for p in log.problems if p.code == "wrong_width")
    if rows_in == 0:
        log.add("header_only", "the file has a header but no data rows")
        return Refused(log.problems, rows_in=0, contract=contract)
    _coerce(cells, kinds, log)
    if contract is None:
        contract = contracts.infer_contract(cells.names, kinds, cells.arrays)
    reserve.start(_reserved_sizes(cells, contract))
    cleaning = _validate(cells, contract, log, pool)
    clock.lap("validate")
    if log:
        return Refused(log.problems, rows_in=rows_in, contract=contract)

    specs = contracts.output_order(contract)
    columns = {
        s.name: cells.encode(s.name) if s.kind is ColumnKind.CATEGORICAL else cells.arrays[s.name] for s in specs
    }
    cells.arrays.clear()  # `columns` holds what is still needed
    cells.encoded.clear()
    hashes = row_hashes([columns[s.name] for s in specs], pool)
    clock.lap("hash")
    candidates = np.flatnonzero(~cleaning.drop) if cleaning.drop.any() else None
    ordering = order_rows([columns[s.name] for s in specs], hashes, candidates, contract.split)
    clock.lap("order")
    kept = int(ordering.order.size)
    rows_dropped = {}
    if cleaning.drop.any():
        rows_dropped["missing_value"] = int(cleaning.drop.sum())
        cleaning.warnings.add_rows(
            "rows_dropped", "rows with an empty cell the contract forbids were dropped", cells.rows(cleaning.drop)
        )
    if ordering.duplicates.size:
        rows_dropped["duplicate"] = int(ordering.duplicates.size)
        cleaning.warnings.add_rows(
            "duplicate_rows", "rows identical to an earlier row were dropped", cells.rows_at(ordering.duplicates)
        )
    if kept < contract.min_rows:
        removed = f" after dropping {sum(rows_dropped.values())} row(s)" if rows_dropped else ""
        log.add("too_few_rows", f"{kept} usable row(s){removed}; the contract requires at least {contract.min_rows}")
    for split in SPLITS:
        if getattr(contract.split, split) > 0 and ordering.rows(split) == 0:
            log.add(
                "empty_split",
                f"no row falls into the {split} split ({kept} usable rows, fractions "
                f"{contract.split.model_dump()}); upload more rows",
            )
    classes: list[Any] = []
    if contract.task is Task.CLASSIFICATION:
        classes = _classes(columns[contract.target], ordering)
        if len(classes) < 2 and kept:
            log.add(
                "single_class",
                f"target {contract.target!r} has a single class ({sample_values(classes)}): a classifier needs two",
                column=contract.target,
            )
    if not log:
        _impute(columns, cleaning, cells, ordering)
        _empty_in_train(columns, contract, ordering, log)
    clock.lap("clean")
    if log:
        return Refused(log.problems, rows_in=rows_in, contract=contract)

    schema_hash = contracts.schema_hash(contract)
    content = helper.submit(content_sha256, schema_hash, ordering.hashes)  # while the columns are reordered
    rows, profiles, parts = _split_and_profile(columns, ordering, contract, pool, reserve, classes)
    sha = content.result()
    dataset_id = dataset_id_for(sha)
    stats = stats_document(
        project=project,
        dataset_id=dataset_id,
        contract=contract,
        features=[profiles[f.name] for f in contract.features],
        target=profiles[contract.target],
        rows=rows,
    )
    clock.lap("split_profile")
    return Prepared(
        contract=contract,
        dataset_id=dataset_id,
        content_sha256=sha,
        schema_hash=schema_hash,
        rows=SplitRows(**rows),
        stats=stats,
        parts=parts,
        rows_in=rows_in,
        rows_dropped=rows_dropped,
        warnings=cleaning.warnings.problems,
        timings=clock.laps,
    )
