"""Make moto's DynamoDB apply each request atomically under concurrent callers, and make its
transactions cost what they touch.

What was measured (moto 5.2.5, docs/registry.md "moto and concurrency"):
- moto's DynamoDB backend has no lock. Requests from several threads (in-process `mock_aws`, or
  the threaded moto server) interleave inside `transact_write_items` and condition checks: 50
  threads doing read-counter + TransactWriteItems(counter = n -> n+1, put item n+1 if absent)
  committed 50 transactions but stored only 48 items (two saw counter = n);
- `transact_write_items` deep-copies every table it touches as its rollback snapshot. Under
  concurrency the copy fails ("RuntimeError: dictionary changed size during iteration", a 500
  from the moto server) and a rollback can restore a snapshot over another thread's committed
  write. Alone, the copy is the cost of a transaction: about 0.4 ms per stored item, 120 ms per
  transaction on a 300-item table, so that a registry under contention spends its time copying.
AWS DynamoDB and DynamoDB Local (the reference) apply a transaction or a conditional write as
one isolated step, in time independent of the table's size.

`install()` patches two things, both on `moto.dynamodb`, nothing else:
1. `DynamoHandler.call_action`, the one entry point of every DynamoDB request in both in-process
   and server mode, runs under a process-wide re-entrant lock: each request (reads included, so
   that no read observes half of a transaction) runs alone.
2. `DynamoDBBackend.transact_write_items` snapshots only the items the transaction names, and
   puts exactly those back if it fails; moto's whole-table copy is skipped (sound because of 1).
It is idempotent and `uninstall()` restores the originals. The local AWS runtime should call
`install()` before it serves requests; moto-backed tests call it in a fixture.
"""

from __future__ import annotations

import copy
import functools
import threading
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

_LOCK = threading.RLock()
_ORIGINALS: dict[str, Any] = {}


def installed() -> bool:
    return bool(_ORIGINALS)


def _snapshot(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(table, hash, range, deep copy of the item or None) for each item the transaction names."""
    seen: set[tuple[str, str]] = set()
    out: list[tuple[Any, ...]] = []
    for entry in transact_items:
        try:
            op_type, op = next(iter(entry.items()))
            table = backend.tables[op["TableName"]]
            attrs = op["Item"] if op_type == "Put" else op["Key"]
            hash_value = DynamoType(attrs[table.hash_key_attr])
            range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
        except (KeyError, StopIteration, AttributeError, TypeError):
            continue  # moto itself refuses this entry before writing it
        identity = (op["TableName"], str(hash_value) + "\x00" + str(range_value))
        if identity in seen:
            continue
        seen.add(identity)
        out.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
    return out


def _restore(snapshot: list[tuple[Any, ...]]) -> None:
    for table, hash_value, range_value, item in snapshot:
        if range_value is None:
            if item is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = item
        elif item is None:
            table.items.get(hash_value, {}).pop(range_value, None)
        else:
            table.items[hash_value][range_value] = item


def install() -> None:
    """Serialise moto's DynamoDB requests and make transaction rollback per item (idempotent)."""
    if installed():
        return
    call_action = DynamoHandler.call_action
    transact = DynamoDBBackend.transact_write_items

    @functools.wraps(call_action)
    def locked_call_action(self: DynamoHandler, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return call_action(self, *args, **kwargs)

    @functools.wraps(transact)
    def item_rollback_transact(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
        with _LOCK:
            snapshot = _snapshot(self, transact_items)
            # moto's own snapshot becomes the table itself (no copy); ours restores what changed
            Table.__deepcopy__ = lambda table, memo: table  # type: ignore[attr-defined]
            try:
                transact(self, transact_items)
            except BaseException:
                _restore(snapshot)
                raise
            finally:
                del Table.__deepcopy__  # type: ignore[attr-defined]

    _ORIGINALS["call_action"] = call_action
    _ORIGINALS["transact_write_items"] = transact
    DynamoHandler.call_action = locked_call_action  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = item_rollback_transact  # type: ignore[method-assign]


def uninstall() -> None:
    if not installed():
        return
    DynamoHandler.call_action = _ORIGINALS.pop("call_action")  # type: ignore[method-assign]
    DynamoDBBackend.transact_write_items = _ORIGINALS.pop("transact_write_items")  # type: ignore[method-assign]
