"""Row hashes, duplicate removal, the deterministic split and the dataset's content hash.

Everything here is defined by the values of a row, never by its position in the file, so the same
rows uploaded in any order give the same dataset id, the same split of every row and byte-identical
curated files (rows are stored in hash order). The definitions are normative: docs/contracts.md
section 1 states them for other implementations.

Row hash (64 bits), over the cleaned row in output order (features in contract order, then target):
    h = SEED
    for each column:  h ^= word;  h *= MULTIPLIER (mod 2**64);  h ^= h >> 32
    h = fmix64(h)     (MurmurHash3's 64-bit finaliser)
where a cell's word is
    numeric:     the IEEE-754 binary64 bits of the value (-0.0 counted as 0.0)
    categorical: the first 8 bytes, little-endian, of BLAKE2b-64 of its UTF-8 bytes
    empty:       NULL_WORD
Each step is a bijection of h, so two rows that differ in a single cell never collide.
"""

from __future__ import annotations

import hashlib
import itertools
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from lepton.data.models import SplitFractions

SEED = 0x243F6A8885A308D3
MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
NULL_WORD = 0x7FF4000000000001  # a NaN payload: never the bits of a cleaned number (NaN is empty)
_FMIX1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX2 = np.uint64(0xC4CEB9FE1A85EC53)
_S32 = np.uint64(32)
_S33 = np.uint64(33)
SPLITS = ("train", "validation", "test")

U64 = npt.NDArray[np.uint64]


def string_word(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode("utf-8"), digest_size=8).digest(), "little")


def _float_words(values: pa.Array, out: U64) -> None:
    numbers = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)
    np.add(numbers, 0.0, out=out.view(np.float64))  # + 0.0 turns -0.0 into 0.0
    if values.null_count:
        out[np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)] = NULL_WORD


def _dictionary_words(encoded: pa.DictionaryArray) -> tuple[U64, npt.NDArray[np.int64]]:
    """The word of each distinct value (the last slot is the empty cell's) and each cell's slot."""
    dictionary = encoded.dictionary.to_pylist()
    table = np.array([*(string_word(v) for v in dictionary), NULL_WORD], dtype=np.uint64)
    indices = encoded.indices
    slots = indices.fill_null(len(dictionary)) if indices.null_count else indices
    return table, np.asarray(slots.to_numpy(zero_copy_only=False))


def column_words(column: pa.Array | pa.ChunkedArray) -> U64:
    """The 64-bit word of every cell of a float64 or string column, plain, chunked or dictionary-encoded
    (see module doc)."""
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            return column_words(column.chunk(0))
        if pa.types.is_floating(column.type):
            words = np.empty(len(column), dtype=np.uint64)
            start = 0
            for chunk in column.chunks:
                _float_words(chunk, words[start : start + len(chunk)])
                start += len(chunk)
            return words
        column = column.combine_chunks()
    if pa.types.is_floating(column.type):
        words = np.empty(len(column), dtype=np.uint64)
        _float_words(column, words)
        return words
    encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
    table, slots = _dictionary_words(encoded)
    return table[slots]


BLOCK_ROWS = 1 << 16
"""Rows hashed at a time: a block's words and running hash stay in the CPU's cache, instead of one
pass over memory per column and operation, and each numpy call has enough rows to release the GIL
for most of its time (the blocks of a run are hashed on one worker while another does the next run)."""


class _Words:
    """Writes the words of rows [start, stop) of one column into a buffer, without materialising the
    whole column's words: the numbers (-0.0 patched) copied from the chunks the rows lie in, or a
    lookup of each cell's distinct value."""

    def __init__(self, column: pa.Array | pa.ChunkedArray) -> None:
        self.numbers: list[npt.NDArray[np.float64]] = []
        self.starts: npt.NDArray[np.int64] = np.zeros(1, dtype=np.int64)
        self.table: U64 | None = None
        self.slots: npt.NDArray[np.integer] | None = None
        self.words: U64 | None = None
        if pa.types.is_floating(column.type) and column.null_count == 0:
            chunks = [c for c in (column.chunks if isinstance(column, pa.ChunkedArray) else [column]) if len(c)]
            self.numbers = [np.asarray(c.to_numpy(zero_copy_only=False), dtype=np.float64) for c in chunks]
            self.starts = np.cumsum([0, *(len(c) for c in chunks)], dtype=np.int64)
        elif pa.types.is_floating(column.type):
            self.words = column_words(column)
        else:
            if isinstance(column, pa.ChunkedArray):
                column = column.combine_chunks()
            encoded = column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)
            self.table, self.slots = _dictionary_words(encoded)

    def fill(self, start: int, stop: int, out: U64) -> U64:
        if self.numbers:
            floats = out.view(np.float64)
            chunk = int(np.searchsorted(self.starts, start, side="right")) - 1
            while start < stop:
                offset, end = int(self.starts[chunk]), int(self.starts[chunk + 1])
                piece = min(stop, end) - start
                position = floats.size - (stop - start)
                np.add(
                    self.numbers[chunk][start - offset : start - offset + piece],
                    0.0,
                    out=floats[position : position + piece],
                )
                start += piece
                chunk += 1
            return out  # + 0.0 turns -0.0 into 0.0
        if self.words is not None:
            return self.words[start:stop]
        assert self.table is not None and self.slots is not None
        return np.take(self.table, self.slots[start:stop], out=out)


def _hash_rows(sources: list[_Words], start: int, stop: int, out: U64) -> None:
    n = stop - start
    h = out[start:stop]
    h.fill(SEED)
    word = np.empty(n, dtype=np.uint64)
    shifted = np.empty(n, dtype=np.uint64)
    for source in sources:
        np.bitwise_xor(h, source.fill(start, stop, word), out=h)
        np.multiply(h, MULTIPLIER, out=h)
        np.right_shift(h, _S32, out=shifted)
        np.bitwise_xor(h, shifted, out=h)
    np.right_shift(h, _S33, out=shifted)
    np.bitwise_xor(h, shifted, out=h)
    np.multiply(h, _FMIX1, out=h)
    np.right_shift(h, _S33, out=shifted)
    np.bitwise_xor(h, shifted, out=h)
    np.multiply(h, _FMIX2, out=h)
    np.right_shift(h, _S33, out=shifted)
    np.bitwise_xor(h, shifted, out=h)


def fmix64(h: U64) -> U64:
    h ^= h >> _S33
    h *= _FMIX1
    h ^= h >> _S33
    h *= _FMIX2
    h ^= h >> _S33
    return h


def row_hashes(columns: list[pa.Array | pa.ChunkedArray], pool: Executor | None = None, runs: int = 2) -> U64:
    """The row hash of every row; `columns` in output order (float64 or text, plain, chunked or
    dictionary-encoded). Computed a block of rows at a time; with a pool, the rows are cut into
    `runs` contiguous runs hashed in parallel (numpy releases the GIL)."""
    count = len(columns[0])
    out = np.empty(count, dtype=np.uint64)
    sources = list(pool.map(_Words, columns)) if pool is not None else [_Words(c) for c in columns]

    def hash_run(first: int, last: int) -> None:
        for start in range(first, last, BLOCK_ROWS):
            _hash_rows(sources, start, min(start + BLOCK_ROWS, last), out)

    if pool is None or count <= BLOCK_ROWS:
        hash_run(0, count)
        return out
    bounds = np.linspace(0, count, runs + 1).astype(np.int64).tolist()
    for done in [pool.submit(hash_run, a, b) for a, b in itertools.pairwise(bounds)]:
        done.result()
    return out


def _equal_rows(
    columns: list[pa.Array | pa.ChunkedArray], left: npt.NDArray[np.int64], right: npt.NDArray[np.int64]
) -> np.ndarray:
    """Whether row left[i] equals row right[i] in every column (two empty cells are equal)."""
    same = np.ones(len(left), dtype=bool)
    lt, rt = pa.array(left), pa.array(right)
    for column in columns:
        a, b = column.take(lt), column.take(rt)
        if pa.types.is_dictionary(a.type):  # one dictionary holding each value once: compare the indices
            a, b = a.indices, b.indices
        equal = pc.equal(a, b).fill_null(False)
        both_null = pc.and_(pc.is_null(a), pc.is_null(b))
        same &= np.asarray(pc.or_(equal, both_null).to_numpy(zero_copy_only=False), dtype=bool)
    return same


def _duplicates(
    columns: list[pa.Array | pa.ChunkedArray],
    order: npt.NDArray[np.int64],
    sorted_hashes: U64,
    repeats: npt.NDArray[np.int64],
) -> npt.NDArray[np.int64]:
    """Positions (in `order`) of rows equal, cell by cell, to an earlier row of the same hash.

    `repeats` are the positions whose hash equals the previous one. Each is compared with the first
    row of its run of equal hashes (vectorised: the common case is copies of one row); the few left
    over, which only a 64-bit collision between distinct rows produces, are compared with every
    earlier kept row of their run."""
    starts = np.flatnonzero(np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]])
    first = starts[np.searchsorted(starts, repeats, side="right") - 1]
    same = _equal_rows(columns, order[repeats], order[first])
    dropped = set(repeats[same].tolist())
    for position in repeats[~same].tolist():
        start = int(starts[np.searchsorted(starts, position, side="right") - 1])
        kept = [p for p in range(start, position) if p not in dropped]
        row = [c.take(pa.array([order[position]])).to_pylist()[0] for c in columns]
        for earlier in kept:
            if [c.take(pa.array([order[earlier]])).to_pylist()[0] for c in columns] == row:
                dropped.add(position)
                break
    return np.array(sorted(dropped), dtype=np.int64)


@dataclass(frozen=True)
class Ordering:
    """The rows kept, in hash order, and where each split starts and ends in that order."""

    order: npt.NDArray[np.int64]  # indices into the cleaned columns
    hashes: U64  # the kept rows' hashes, ascending
    duplicates: npt.NDArray[np.int64]  # indices of rows dropped as exact duplicates of a kept row
    bounds: dict[str, tuple[int, int]]  # split -> [start, stop) in `order`

    def rows(self, split: str) -> int:
        start, stop = self.bounds[split]
        return stop - start


def split_thresholds(fractions: SplitFractions) -> tuple[int, int]:
    """A row goes to train when h < t1, to validation when t1 <= h < t2, else to test."""
    top = 2**64 - 1
    t1 = min(int(fractions.train * 2**64), top)
    t2 = min(int((fractions.train + fractions.validation) * 2**64), top)
    return t1, t2


def argsort_stable(hashes: U64) -> npt.NDArray[np.int64]:
    """np.argsort(hashes, kind="stable"), about three times faster: the top bits of each hash and its
    position packed into one word, so that one value sort (which numpy vectorises; its argsort is not)
    orders them, ties on the top bits by position. Runs whose top bits tie (rare for 64-bit hashes,
    always for duplicates) are then ordered by the whole hash, stably."""
    n = int(hashes.size)
    if n < 2:
        return np.arange(n, dtype=np.int64)
    bits = (n - 1).bit_length()
    low = np.uint64((1 << bits) - 1)
    keys = np.bitwise_and(hashes, ~low)
    np.bitwise_or(keys, np.arange(n, dtype=np.uint64), out=keys)
    keys.sort()
    order = np.bitwise_and(keys, low).astype(np.int64)
    np.bitwise_and(keys, ~low, out=keys)  # the top bits, ascending
    ties = np.flatnonzero(keys[1:] == keys[:-1])
    if ties.size:
        spots = np.union1d(ties, ties + 1)  # positions in a run of equal top bits, ascending
        new_run = np.r_[True, (np.diff(spots) != 1) | (keys[spots[1:]] != keys[spots[:-1]])]
        run = np.cumsum(new_run)
        rows = order[spots]  # within a run, by position
        order[spots] = rows[np.lexsort((hashes[rows], run))]  # lexsort is stable
    return order


def order_rows(
    columns: list[pa.Array | pa.ChunkedArray],
    hashes: U64,
    candidates: npt.NDArray[np.int64] | None,
    fractions: SplitFractions,
) -> Ordering:
    """Sort the candidate rows (ascending row indices; None: every row) by hash, drop exact duplicates
    (verified cell by cell, so a hash collision never drops a distinct row) and cut the sorted rows into
    the splits."""
    # stable: of rows with equal hashes, the first (in file order) comes first and is the one kept
    if candidates is None or candidates.size == hashes.size:
        order = argsort_stable(hashes)
    else:
        order = candidates[argsort_stable(hashes[candidates])]
    sorted_hashes = hashes[order]
    repeats = np.flatnonzero(sorted_hashes[1:] == sorted_hashes[:-1]) + 1
    duplicates = np.empty(0, dtype=np.int64)
    if repeats.size:
        dropped = _duplicates(columns, order, sorted_hashes, repeats)
        duplicates = order[dropped]
        keep = np.ones(order.size, dtype=bool)
        keep[dropped] = False
        order, sorted_hashes = order[keep], sorted_hashes[keep]
    t1, t2 = split_thresholds(fractions)
    cut1 = int(np.searchsorted(sorted_hashes, np.uint64(t1), side="left"))
    cut2 = int(np.searchsorted(sorted_hashes, np.uint64(t2), side="left"))
    bounds = {"train": (0, cut1), "validation": (cut1, cut2), "test": (cut2, int(order.size))}
    return Ordering(order=order, hashes=sorted_hashes, duplicates=duplicates, bounds=bounds)


def content_sha256(schema_hash: str, sorted_hashes: U64) -> str:
    """sha256 over the schema hash (64 hex characters, ASCII) followed by the kept rows' hashes in
    ascending order as 8-byte little-endian integers."""
    digest = hashlib.sha256(schema_hash.encode("ascii"))
    digest.update(np.ascontiguousarray(sorted_hashes, dtype="<u8").data)  # no copy
    return digest.hexdigest()
