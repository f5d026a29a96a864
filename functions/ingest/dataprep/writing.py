"""Serialising a dataset into the curated layout (docs/contracts.md section 1)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

MANIFEST = "manifest.json"
STATS = "stats.json"
PARQUET_COMPRESSION = "none"
PARQUET_TYPE = "application/vnd.apache.parquet"
JSON_TYPE = "application/json"


PART_ROWS = 1 << 18
"""A split is stored in parts of at most this many rows (the last part holds the rest), so the same
content always gives the same files and large splits are written in parallel."""


def part_key(split: str, part: int = 0) -> str:
    return f"{split}/part-{part:05d}.parquet"


def part_slices(rows: int) -> list[tuple[int, int]]:
    """(offset, length) of each part of a split of `rows` rows; an empty split has one empty part."""
    return [(start, min(PART_ROWS, rows - start)) for start in range(0, rows, PART_ROWS)] or [(0, 0)]


@dataclass(frozen=True)
class CuratedObject:
    """One object of a curated dataset: its key relative to the dataset prefix, bytes and sha256."""

    relative_key: str
    body: bytes | pa.Buffer
    content_type: str
    sha256: str

    @classmethod
    def of(cls, relative_key: str, body: bytes | pa.Buffer, content_type: str) -> CuratedObject:
        return cls(relative_key, body, content_type, hashlib.sha256(memoryview(body)).hexdigest())

    @property
    def size(self) -> int:
        return len(memoryview(self.body))


def _write_parquet(table: pa.Table, sink: pa.NativeFile) -> None:
    # Text columns arrive dictionary-encoded and are stored with that dictionary; numbers gain little
    # from one and it costs write time. No column statistics: no reader of curated data filters on
    # them, and they cost a fifth of the write. No Arrow schema: readers get plain `string` columns.
    text = [f.name for f in table.schema if pa.types.is_dictionary(f.type) or pa.types.is_string(f.type)]
    pq.write_table(
        table,
        sink,
        compression=PARQUET_COMPRESSION,
        use_dictionary=text or False,
        write_statistics=False,
        store_schema=False,
    )


def _capacity(table: pa.Table) -> int:
    return int(table.nbytes * 1.02) + (1 << 20) + 4096 * table.num_columns


Put = Callable[[CuratedObject], None]
"""Stores one object. Its body may be a view of a buffer that is reused once `put` returns."""


def write_parts(parts: list[tuple[str, pa.Table]], put: Put, workers: int = 2) -> list[CuratedObject]:
    """Write each (relative key, table) as a parquet part and hand it to `put`, `workers` at a time;
    returns the objects in the order given (their bodies must not be read after `put` returned).

    Each worker writes into one buffer of its own, sized up front and reused from part to part:
    uncompressed parquet takes about the table's own size (values, definition levels for its validity
    bitmaps, dictionary indices of at most four bytes), and a growing buffer would be copied and
    touched about twice over as it doubles. A part that does not fit (a text column too diverse for
    its dictionary) is written again into a growing buffer."""
    local = threading.local()

    def write(item: tuple[str, pa.Table]) -> CuratedObject:
        key, table = item
        capacity = _capacity(table)
        buffer = getattr(local, "buffer", None)
        if buffer is None or buffer.size < capacity:
            buffer = local.buffer = pa.allocate_buffer(capacity)
        sink = pa.FixedSizeBufferWriter(buffer)
        try:
            _write_parquet(table, sink)
            body = buffer.slice(0, sink.tell())
        except OSError:  # "Write out of bounds": larger than estimated
            growing = pa.BufferOutputStream()
            _write_parquet(table, growing)
            body = growing.getvalue()
        written = CuratedObject.of(key, body, PARQUET_TYPE)
        put(written)
        return written

    if workers <= 1 or len(parts) <= 1:
        return [write(part) for part in parts]
    shares = _shares([table.nbytes for _, table in parts], workers)

    def write_share(share: list[int]) -> list[tuple[int, CuratedObject]]:
        return [(i, write(parts[i])) for i in share]

    with ThreadPoolExecutor(max_workers=len(shares)) as pool:
        written = dict(pair for share in pool.map(write_share, shares) for pair in share)
    return [written[i] for i in range(len(parts))]


EXACT_SHARES = 10
"""Up to this many parts, two workers' shares are chosen among every split."""


def _shares(sizes: list[int], workers: int) -> list[list[int]]:
    """The parts' indices for each worker, each share largest part first (a worker's buffer is sized
    by its first part), so that the largest total is small: writing and hashing take time in
    proportion to the bytes. Handing parts to whichever worker is free left one worker with a
    third more than the other on the benchmark's five parts (46, 46, 31, 26 and 26 MB: 98 MB against
    77; the best split is 92 against 83). Two workers and up to EXACT_SHARES parts: the best split
    (the first found); otherwise each part, largest first, to the least loaded worker."""
    by_size = sorted(range(len(sizes)), key=lambda i: (-sizes[i], i))
    if workers == 2 and len(sizes) <= EXACT_SHARES:
        total = sum(sizes)
        best_mask, best_load = 0, total + 1
        for mask in range(1 << (len(by_size) - 1)):  # the largest part always goes to the first worker
            first = sum(sizes[i] for k, i in enumerate(by_size[1:]) if mask >> k & 1) + sizes[by_size[0]]
            load = max(first, total - first)
            if load < best_load:
                best_mask, best_load = mask, load
        first_share = [by_size[0], *(i for k, i in enumerate(by_size[1:]) if best_mask >> k & 1)]
        second_share = [i for i in by_size if i not in first_share]
        return [share for share in (first_share, second_share) if share]
    shares: list[list[int]] = [[] for _ in range(min(workers, len(sizes)))]
    loads = [0] * len(shares)
    for i in by_size:
        least = loads.index(min(loads))
        shares[least].append(i)
        loads[least] += sizes[i]
    return shares


def owned(obj: CuratedObject) -> CuratedObject:
    """The object with a copy of its body (safe to keep after `put` returned)."""
    return CuratedObject(obj.relative_key, bytes(memoryview(obj.body)), obj.content_type, obj.sha256)


def json_bytes(doc: Any) -> bytes:
    return json.dumps(doc, indent=2, allow_nan=False).encode("utf-8") + b"\n"


def json_object(relative_key: str, doc: Any) -> CuratedObject:
    return CuratedObject.of(relative_key, json_bytes(doc), JSON_TYPE)


def manifest_object(
    *, dataset_id: str, content_sha256: str, schema_hash: str, rows: dict[str, int], objects: list[CuratedObject]
) -> CuratedObject:
    """manifest.json lists every other object of the dataset with its sha256. The writer puts it last,
    so a reader that finds it knows the whole dataset is in place."""
    doc = {
        "dataset_id": dataset_id,
        "content_sha256": content_sha256,
        "schema_hash": schema_hash,
        "rows": rows,
        "files": {o.relative_key: o.sha256 for o in objects},
    }
    return json_object(MANIFEST, doc)
