"""The audit chain's hashing and verification (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from lepton.registry.audit import GENESIS_HASH, compute_hash, new_entry, verify_chain
from lepton.registry.models import AuditEntry

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def chain(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        e = new_entry(
            project="wine",
            seq=seq,
            prev_hash=prev,
            at=T0 + timedelta(seconds=seq),
            actor="arn:aws:iam::123456789012:user/alice",
            action="version.registered",
            target=f"version/{seq}",
            before=None,
            after={"n": seq, "metric": 0.1 * seq, "nested": {"b": [1, 2], "a": True}},
            reason="r",
        )
        entries.append(e)
        prev = e.hash
    return entries


def test_intact_chain_verifies() -> None:
    entries = chain(5)
    report = verify_chain("wine", entries, head_seq=5, head_hash=entries[-1].hash)
    assert report.ok and report.checked == 5 and report.first_bad is None


def test_hash_is_stable_through_json() -> None:
    e = chain(1)[0]
    again = AuditEntry.model_validate_json(e.model_dump_json())
    assert compute_hash(again) == e.hash
    assert compute_hash(again.model_copy(update={"reason": "other"})) != e.hash


def test_edited_entry_is_found() -> None:
    entries = chain(5)
    entries[2] = entries[2].model_copy(update={"actor": "arn:aws:iam::123456789012:user/mallory"})
    report = verify_chain("wine", entries, head_seq=5, head_hash=entries[-1].hash)
    assert (report.ok, report.first_bad, report.problem) == (False, 3, "edited")


def test_edited_entry_with_recomputed_hash_breaks_the_next_link() -> None:
    entries = chain(5)
    forged = entries[2].model_copy(update={"after": {"n": 999}})
    entries[2] = forged.model_copy(update={"hash": compute_hash(forged)})
    report = verify_chain("wine", entries, head_seq=5, head_hash=entries[-1].hash)
    assert (report.first_bad, report.problem) == (4, "broken_link")


def test_forged_last_entry_does_not_match_the_head() -> None:
    entries = chain(3)
    head = entries[-1].hash
    forged = entries[2].model_copy(update={"reason": "forged"})
    entries[2] = forged.model_copy(update={"hash": compute_hash(forged)})
    report = verify_chain("wine", entries, head_seq=3, head_hash=head)
    assert (report.first_bad, report.problem) == (3, "head_mismatch")


def test_missing_entries_are_found() -> None:
    entries = chain(5)
    report = verify_chain("wine", entries[:2] + entries[3:], head_seq=5, head_hash=entries[-1].hash)
    assert (report.first_bad, report.problem) == (3, "missing")
    report = verify_chain("wine", entries[:4], head_seq=5, head_hash=entries[-1].hash)
    assert (report.first_bad, report.problem) == (5, "missing")
    report = verify_chain("wine", entries[1:], head_seq=5, head_hash=entries[-1].hash)
    assert (report.first_bad, report.problem) == (1, "missing")
