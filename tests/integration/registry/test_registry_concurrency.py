"""Invariants under concurrency, on every backend (moto in-process, moto server, DynamoDB Local)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from registry_backends import Backend
from registry_testkit import ALICE, RecordingPublisher, deploying, registration, seed_project

from lepton.errors import ConcurrentModification, ProjectExists
from lepton.registry.commands import NewProject
from lepton.registry.models import Role, VersionStatus
from lepton.registry.ports import VersionQuery
from lepton.registry.service import Actor

P = "wine"
pytestmark = pytest.mark.timeout(300)


def test_50_concurrent_registrations_get_50_dense_numbers(backend: Backend, publisher: RecordingPublisher) -> None:
    svc = backend.service(publisher=publisher)
    ds = seed_project(svc, P)[0].dataset_id
    start = threading.Barrier(50)

    def register(i: int) -> int:
        start.wait()
        version, created = svc.register_version(ALICE, P, registration(ds, f"job-{i:02d}"))
        assert created
        return version.number

    with ThreadPoolExecutor(50) as pool:
        numbers = list(pool.map(register, range(50)))
    assert sorted(numbers) == list(range(1, 51))
    project = svc.get_project(ALICE, P)
    assert project.version_count == 50
    stored = []
    cursor = None
    while True:
        page = svc.list_versions(ALICE, P, VersionQuery(newest_first=False), 20, cursor)
        stored += page.items
        cursor = page.cursor
        if cursor is None:
            break
    assert [v.number for v in stored] == list(range(1, 51))
    # each version is the job its thread registered, exactly once
    assert sorted(v.training_job for v in stored) == [f"job-{i:02d}" for i in range(50)]
    published = [e for e in publisher.events if e.detail_type == "ModelVersionRegistered"]
    assert sorted(e.version for e in published) == list(range(1, 51))  # type: ignore[attr-defined]
    report = svc.verify_audit(ALICE, P)
    assert report.ok and report.head_seq == 52  # project, dataset, 50 versions


def test_concurrent_retries_of_the_same_job_register_it_once(backend: Backend) -> None:
    svc = backend.service()
    ds = seed_project(svc, P)[0].dataset_id
    start = threading.Barrier(10)

    def register(_: int) -> tuple[int, bool]:
        start.wait()
        version, created = svc.register_version(ALICE, P, registration(ds, "job-same"))
        return version.number, created

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(register, range(10)))
    assert {n for n, _ in results} == {1}
    assert sum(created for _, created in results) == 1
    assert svc.get_project(ALICE, P).version_count == 1


def _promote_race(svc: Any, candidates: list[int], expected: int | None) -> tuple[list[int], list[Any]]:
    start = threading.Barrier(len(candidates))
    approver = Actor("arn:aws:iam::123456789012:user/carol")

    def promote(n: int) -> tuple[int, Exception | None]:
        start.wait()
        try:
            svc.promote(approver, P, n, f"promote {n}", expected_current=expected)
            return n, None
        except ConcurrentModification as exc:
            return n, exc

    with ThreadPoolExecutor(len(candidates)) as pool:
        results = list(pool.map(promote, candidates))
    return [n for n, e in results if e is None], [e for _, e in results if e is not None]


def test_20_concurrent_promotions_have_exactly_one_winner(backend: Backend, publisher: RecordingPublisher) -> None:
    svc = backend.service(publisher=publisher)
    ds = seed_project(svc, P)[0].dataset_id
    svc.set_member(ALICE, P, "arn:aws:iam::123456789012:user/carol", Role.APPROVER)
    for i in range(21):
        svc.register_version(ALICE, P, registration(ds, f"job-{i}"))
        deploying(svc, P, i + 1)
    svc.promote(ALICE, P, 1, "baseline")
    publisher.events.clear()

    winners, losers = _promote_race(svc, list(range(2, 22)), expected=1)
    assert len(winners) == 1 and len(losers) == 19
    winner = winners[0]
    assert all(e.status == 409 and e.details["current_production"] == winner for e in losers)
    production = svc.get_alias(ALICE, P, "production")
    previous = svc.get_alias(ALICE, P, "previous")
    assert (production.version, previous.version) == (winner, 1)
    history = svc.alias_history(ALICE, P, "production", at=None, limit=50, cursor=None).items
    assert [(h.version, h.previous_version) for h in history] == [(winner, 1), (1, None)]
    statuses = {v.number: v.status for v in svc.list_versions(ALICE, P, VersionQuery(), 50, None).items}
    assert statuses[winner] is VersionStatus.PRODUCTION and statuses[1] is VersionStatus.SUPERSEDED
    assert [n for n, s in statuses.items() if s is VersionStatus.PRODUCTION] == [winner]
    assert sum(s is VersionStatus.DEPLOYING for s in statuses.values()) == 19
    moved = [e for e in publisher.events if e.detail_type == "AliasMoved"]
    assert sorted((e.alias, e.version) for e in moved) == [("previous", 1), ("production", winner)]  # type: ignore[attr-defined]
    assert svc.verify_audit(ALICE, P).ok


def test_first_promotions_race_too(backend: Backend) -> None:
    """No production yet (expected_current None): still exactly one winner."""
    svc = backend.service()
    ds = seed_project(svc, P)[0].dataset_id
    for i in range(8):
        svc.register_version(ALICE, P, registration(ds, f"job-{i}"))
        deploying(svc, P, i + 1)
    svc.set_member(ALICE, P, "arn:aws:iam::123456789012:user/carol", Role.APPROVER)
    winners, losers = _promote_race(svc, list(range(1, 9)), expected=None)
    assert len(winners) == 1 and len(losers) == 7
    assert svc.get_alias(ALICE, P, "production").version == winners[0]
    assert len(svc.alias_history(ALICE, P, "production", at=None, limit=50, cursor=None).items) == 1


def test_concurrent_creations_of_one_project_have_exactly_one_winner(
    backend: Backend, publisher: RecordingPublisher
) -> None:
    svc = backend.service(publisher=publisher)
    creators = [Actor(f"arn:aws:iam::123456789012:user/creator-{i:02d}") for i in range(10)]
    start = threading.Barrier(len(creators))

    def create(actor: Actor) -> str:
        start.wait()
        try:
            svc.create_project(actor, NewProject(name=P, description=actor.principal))
        except ProjectExists:
            return "exists"
        return "created"

    with ThreadPoolExecutor(len(creators)) as pool:
        outcomes = list(pool.map(create, creators))
    assert sorted(outcomes) == ["created"] + ["exists"] * 9
    (winner,) = [a for a, o in zip(creators, outcomes, strict=True) if o == "created"]
    project = svc.get_project(winner, P)
    assert project.description == winner.principal and project.members == {winner.principal: Role.ADMIN}
    assert [e.detail_type for e in publisher.events] == ["ProjectCreated"]
    for actor in creators:
        assert [m.project for m in svc.list_projects(actor, 10, None).items] == ([P] if actor is winner else [])
    report = svc.verify_audit(winner, P)
    assert report.ok and report.head_seq == 1
