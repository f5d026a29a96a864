"""The hash-chained, append-only audit log of a project (pure functions; storage is a port).

Entry n carries `prev_hash` = hash of entry n-1 (entry 1: 64 zeros) and `hash` = sha256 of the
canonical JSON of all its other fields. The project record keeps the sequence number and hash of
the last entry (the head), written in the same transaction as every entry, so that:
- an edited entry no longer matches its own hash, or breaks its successor's `prev_hash`;
- a deleted entry leaves a gap in the sequence; a deleted tail is shorter than the head says;
- an edited last entry with a recomputed hash no longer matches the head.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from lepton.registry.models import AuditEntry

GENESIS_HASH = "0" * 64

Problem = Literal["edited", "missing", "broken_link", "head_mismatch"]


def _canonical(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute_hash(entry: AuditEntry) -> str:
    """The hash an entry must carry, computed from every field but `hash` itself."""
    return hashlib.sha256(_canonical(entry.model_dump(mode="json", exclude={"hash"}))).hexdigest()


def new_entry(
    *,
    project: str,
    seq: int,
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEntry:
    draft = AuditEntry(
        project=project,
        seq=seq,
        at=at,
        actor=actor,
        action=action,
        target=target,
        before=before,
        after=after,
        reason=reason,
        prev_hash=prev_hash,
        hash="",
    )
    return draft.model_copy(update={"hash": compute_hash(draft)})


class VerifyReport(BaseModel):
    """Result of verifying a project's chain. `first_bad` is the sequence number of the first entry
    that is edited, missing or unlinked; None when the chain is intact."""

    model_config = ConfigDict(frozen=True)

    project: str
    ok: bool
    checked: int
    head_seq: int
    first_bad: int | None = None
    problem: Problem | None = None
    detail: str = ""


def verify_chain(project: str, entries: Iterable[AuditEntry], *, head_seq: int, head_hash: str) -> VerifyReport:
    """Walk `entries` in sequence order and report the first broken or missing entry."""
    expected = 1
    prev = GENESIS_HASH
    checked = 0

    def bad(seq: int, problem: Problem, detail: str) -> VerifyReport:
        return VerifyReport(
            project=project,
            ok=False,
            checked=checked,
            head_seq=head_seq,
            first_bad=seq,
            problem=problem,
            detail=detail,
        )

    for entry in entries:
        if entry.project != project:
            return bad(entry.seq, "edited", f"entry {entry.seq} names project {entry.project!r}")
        if entry.seq != expected:
            if entry.seq > expected:
                return bad(expected, "missing", f"entry {expected} is missing (next found: {entry.seq})")
            return bad(entry.seq, "edited", f"entry {entry.seq} appears out of order")
        if compute_hash(entry) != entry.hash:
            return bad(entry.seq, "edited", f"entry {entry.seq} does not match its hash")
        if entry.prev_hash != prev:
            return bad(entry.seq, "broken_link", f"entry {entry.seq} does not link to entry {entry.seq - 1}")
        prev = entry.hash
        expected += 1
        checked += 1
    last = expected - 1
    if last < head_seq:
        return bad(expected, "missing", f"entries {expected}..{head_seq} are missing")
    if last > head_seq:
        return bad(head_seq + 1, "edited", f"entries after the head ({head_seq}) were added outside a transaction")
    if prev != head_hash:
        return bad(last, "head_mismatch", f"entry {last} does not match the project's head hash")
    return VerifyReport(project=project, ok=True, checked=checked, head_seq=head_seq)
