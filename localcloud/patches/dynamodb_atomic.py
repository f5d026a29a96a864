"""Make moto's DynamoDB apply each request atomically under concurrent callers.

What was measured (moto 5.2.5, see docs/registry.md "moto and concurrency"): moto's DynamoDB
backend has no lock. Requests from several threads (in-process `mock_aws`, or the threaded moto
server) interleave inside `transact_write_items` and the condition checks:
- 50 threads doing read-counter + TransactWriteItems(counter = n -> n+1, put item n+1 if absent)
  committed 50 transactions but stored only 48 items: two transactions both saw counter = n;
- `transact_write_items` deep-copies the table as its rollback snapshot while other threads write
  to it, and fails with "RuntimeError: dictionary changed size during iteration" (a 500 from the
  moto server), and its rollback can restore a snapshot over another thread's committed write.
AWS DynamoDB and DynamoDB Local (the reference) apply a transaction or a conditional write as one
isolated step.

`install()` wraps `DynamoHandler.call_action`, the one entry point every DynamoDB request goes
through in both in-process and server mode, with a process-wide re-entrant lock: each request
(reads included, so that no read observes half of a transaction) runs alone. Nothing else in
moto changes. It is idempotent and `uninstall()` restores the original.

The local AWS runtime should call `install()` before it serves requests; moto-backed tests that
exercise concurrency call it in a fixture.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from moto.dynamodb.responses import DynamoHandler

_LOCK = threading.RLock()
_ORIGINAL_ATTR = "_lepton_original_call_action"


def installed() -> bool:
    return hasattr(DynamoHandler, _ORIGINAL_ATTR)


def install() -> None:
    """Serialise every DynamoDB request moto handles in this process (idempotent)."""
    if installed():
        return
    original = DynamoHandler.call_action

    @functools.wraps(original)
    def call_action(self: DynamoHandler, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return original(self, *args, **kwargs)

    setattr(DynamoHandler, _ORIGINAL_ATTR, original)
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


def uninstall() -> None:
    if not installed():
        return
    DynamoHandler.call_action = getattr(DynamoHandler, _ORIGINAL_ATTR)  # type: ignore[method-assign]
    delattr(DynamoHandler, _ORIGINAL_ATTR)
