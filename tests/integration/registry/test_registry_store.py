"""Store-level invariants and the round-trip budget, on every backend."""

from __future__ import annotations

import pytest
from registry_backends import Backend
from registry_testkit import (
    ALICE,
    BOB,
    SYSTEM,
    DynamoCallCounter,
    deploying,
    registration,
    seed_project,
    table_snapshot,
)

from lepton.errors import IllegalTransition, IntegrityError
from lepton.registry.commands import NewProject, NewRun, VersionPatch
from lepton.registry.dynamo import DynamoRegistryRepository
from lepton.registry.models import Role, RunOverrides, RunStatus, VersionStatus
from lepton.registry.ports import Change, CommitConflict, Update, VersionQuery

P = "wine"


def test_round_trip_budget(backend: Backend) -> None:
    svc = backend.service()
    counter = DynamoCallCounter(backend.table, backend.host)
    with counter.counting() as c:
        svc.create_project(ALICE, NewProject(name="budget"))
    # the project, its first audit entry and the creator's membership are one item
    assert dict(c.calls) == {"PutItem": 1}
    ds = seed_project(svc, P)[0].dataset_id
    with counter.counting() as c:
        svc.register_version(ALICE, P, registration(ds, "job-1"))
    # the project (roles, counters, audit head) and the dataset read together, then one transaction
    assert dict(c.calls) == {"BatchGetItem": 1, "TransactWriteItems": 1}
    svc.register_version(ALICE, P, registration(ds, "job-2"))
    deploying(svc, P, 1)
    deploying(svc, P, 2)
    svc.promote(ALICE, P, 1, "first")
    with counter.counting() as c:
        svc.promote(ALICE, P, 2, "second")
    assert c.calls["TransactWriteItems"] == 1
    with counter.counting() as c:
        alias = svc.resolve_alias(P, "production")
    assert alias is not None and alias.version == 2 and alias.target.artifact_sha256 == "c" * 64
    assert dict(c.calls) == {"GetItem": 1}
    with counter.counting() as c:
        assert svc.get_alias(ALICE, P, "production").version == 2  # the caller's role and the alias together
    assert dict(c.calls) == {"BatchGetItem": 1}
    repo = DynamoRegistryRepository(backend.table, host=backend.host, region="us-east-1")
    with counter.counting() as c:
        page = repo.query_versions(P, VersionQuery(status=VersionStatus.SUPERSEDED), 10, None)
    assert [v.number for v in page.items] == [1] and dict(c.calls) == {"Query": 1}
    with counter.counting() as c:
        page = repo.query_versions(P, VersionQuery(tag="none"), 1, None)
    assert dict(c.calls) == {"Query": 1}


def test_the_listings_see_a_new_project_its_creator_and_its_first_audit_entry(backend: Backend) -> None:
    svc = backend.service()
    ds = seed_project(svc, P)[0].dataset_id
    svc.create_project(BOB, NewProject(name="bobs"))
    svc.set_member(BOB, "bobs", ALICE.principal, Role.APPROVER)
    svc.register_version(ALICE, P, registration(ds, "job-1"))
    pages = []
    cursor = None
    while True:
        page = svc.list_projects(ALICE, 1, cursor)
        pages.append([(m.project, m.role.value) for m in page.items])
        if (cursor := page.cursor) is None:
            break
    assert [p for p in pages if p] == [[("bobs", "approver")], [(P, "admin")]]
    head = svc.get_project(ALICE, P).audit_seq
    for newest_first in (False, True):
        seqs: list[int] = []
        cursor = None
        while True:
            audit = svc.audit_page(ALICE, P, 2, cursor, newest_first=newest_first)
            seqs += [e.seq for e in audit.items]
            if (cursor := audit.cursor) is None:
                break
        assert seqs == (list(range(head, 0, -1)) if newest_first else list(range(1, head + 1)))
    assert svc.verify_audit(ALICE, P).ok


def test_a_failed_transaction_writes_nothing(backend: Backend) -> None:
    svc = backend.service()
    ds = seed_project(svc, P)[0].dataset_id
    svc.register_version(ALICE, P, registration(ds, "job-1"))
    before = table_snapshot(backend.client, backend.table)
    project = svc.get_project(ALICE, P)
    version = svc.get_version(ALICE, P, 1)
    stale = project.model_copy(update={"audit_seq": project.audit_seq - 1})
    # a change computed from a stale project read: every part must be refused together
    change = Change(
        project=Update(stale, project.model_copy(update={"description": "lost update"})),
        audit=None,
        version_updates=[Update(version, version.model_copy(update={"description": "lost"}))],
    )
    try:
        svc.repo.commit(change)
    except CommitConflict as conflict:
        assert "project" in conflict.failed
    else:
        raise AssertionError("a stale change was committed")
    assert table_snapshot(backend.client, backend.table) == before
    with pytest.raises(IllegalTransition):
        svc.transition(ALICE, P, 1, VersionStatus.DEPLOYING, "skip")
    assert table_snapshot(backend.client, backend.table) == before


def test_the_core_is_immutable_even_for_the_adapter(backend: Backend) -> None:
    svc = backend.service()
    ds = seed_project(svc, P)[0].dataset_id
    svc.register_version(ALICE, P, registration(ds, "job-1"))
    project, version = svc.get_project(ALICE, P), svc.get_version(ALICE, P, 1)
    forged = version.model_copy(update={"metrics": {"validation:accuracy": 1.0}})
    try:
        svc.repo.commit(Change(project=Update(project, project), audit=None, version_updates=[Update(version, forged)]))
    except IntegrityError:
        pass
    else:
        raise AssertionError("the adapter wrote a changed core")
    svc.update_version(ALICE, P, 1, VersionPatch(description="ok"))
    assert svc.get_version(ALICE, P, 1).metrics == version.metrics


def test_tampering_is_found(backend: Backend) -> None:
    svc = backend.service()
    ds = seed_project(svc, P)[0].dataset_id
    for i in range(3):
        svc.register_version(ALICE, P, registration(ds, f"job-{i}"))
    client, table = backend.client, backend.table
    key = {"pk": {"S": f"PROJECT#{P}"}, "sk": {"S": "AUDIT#0000000004"}}
    original = client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    client.put_item(TableName=table, Item={**original, "body": {"S": original["body"]["S"].replace("job-1", "job-x")}})
    report = svc.verify_audit(ALICE, P)
    assert (report.ok, report.first_bad, report.problem) == (False, 4, "edited")
    client.delete_item(TableName=table, Key=key)
    report = svc.verify_audit(ALICE, P)
    assert (report.ok, report.first_bad, report.problem) == (False, 4, "missing")
    vkey = {"pk": {"S": f"PROJECT#{P}"}, "sk": {"S": "VERSION#0000000002"}}
    item = client.get_item(TableName=table, Key=vkey, ConsistentRead=True)["Item"]
    client.put_item(TableName=table, Item={**item, "body": {"S": item["body"]["S"].replace("job-1", "job-x")}})
    try:
        svc.get_version(ALICE, P, 2)
    except IntegrityError:
        pass
    else:
        raise AssertionError("an edited core was served")


def test_runs_are_listed_by_status_newest_first_across_pages(backend: Backend) -> None:
    """GET .../runs?status=: the filter is applied by the store (a FilterExpression on the run's
    status), so a page may hold fewer than `limit` runs; following the cursors finds them all."""
    svc = backend.service()
    ds = seed_project(svc, P)[0].dataset_id
    created = [svc.create_run(ALICE, P, NewRun(overrides=RunOverrides(dataset_id=ds))) for _ in range(5)]
    execution = "arn:aws:states:us-east-1:123456789012:execution:lepton-test-lifecycle:"
    for i in (0, 2, 3):
        svc.begin_run(SYSTEM, P, created[i].run_id, execution + str(i))

    def every(status: RunStatus | None) -> list[str]:
        found, cursor = [], None
        while True:
            page = svc.list_runs(ALICE, P, 2, cursor, status)
            assert len(page.items) <= 2
            found += [r.run_id for r in page.items]
            if page.cursor is None:
                return found
            cursor = page.cursor

    newest_first = sorted((r.run_id for r in created), reverse=True)
    assert every(None) == newest_first
    running = every(RunStatus.RUNNING)
    assert running == [r for r in newest_first if r in {created[i].run_id for i in (0, 2, 3)}]
    assert every(RunStatus.PENDING) == [r for r in newest_first if r not in running]
    assert every(RunStatus.SUCCEEDED) == []
