"""The registry's domain behaviour, on the real DynamoDB adapter over moto in-process."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from registry_testkit import (
    ALICE,
    BOB,
    CAROL,
    INGEST,
    MALLORY,
    SYSTEM,
    RecordingPublisher,
    dataset,
    deploying,
    registration,
    seed_project,
    table_snapshot,
)

from lepton.errors import (
    AliasNotFound,
    AliasReserved,
    AlreadyExists,
    ConcurrentModification,
    Conflict,
    Forbidden,
    IllegalTransition,
    IntegrityError,
    LastAdmin,
    ProjectExists,
    ProjectNotFound,
    RunNotFound,
    ValidationFailed,
    VersionNotFound,
)
from lepton.registry.commands import NewProject, NewRun, ProjectPatch, VersionPatch
from lepton.registry.models import (
    ALLOWED_TRANSITIONS,
    FailureCause,
    Role,
    RunOverrides,
    RunStatus,
    VersionStatus,
)
from lepton.registry.ports import VersionQuery
from lepton.registry.service import RegistryService

P = "wine"


@pytest.fixture
def ds(svc: RegistryService) -> str:
    return seed_project(svc, P)[0].dataset_id


def register(svc: RegistryService, ds: str, job: str, **kw: Any) -> int:
    version, created = svc.register_version(ALICE, P, registration(ds, job, **kw))
    assert created
    return version.number


# ------------------------------------------------------------------------------------- projects


def test_creator_becomes_admin_and_project_is_audited(svc: RegistryService, publisher: RecordingPublisher) -> None:
    project = svc.create_project(ALICE, NewProject(name=P))
    assert project.members == {ALICE.principal: Role.ADMIN}
    assert project.audit_seq == 1
    assert [m.project for m in svc.list_projects(ALICE, 10, None).items] == [P]
    assert svc.list_projects(BOB, 10, None).items == []
    assert publisher.types() == ["ProjectCreated"]
    with pytest.raises(ProjectExists):
        svc.create_project(BOB, NewProject(name=P))
    assert svc.get_project(ALICE, P).members == {ALICE.principal: Role.ADMIN}


def test_a_new_project_is_one_item_holding_its_first_audit_entry_and_its_creators_membership(
    svc: RegistryService, ddb: Any, table: str
) -> None:
    svc.create_project(ALICE, NewProject(name=P))
    (item,) = table_snapshot(ddb, table)
    assert (item["pk"]["S"], item["sk"]["S"]) == (f"PROJECT#{P}", "PROJECT")
    assert item["role"]["S"] == "admin" and item["gsi2pk"]["S"] == f"MEMBER#{ALICE.principal}"
    (entry,) = svc.audit_page(ALICE, P, 10, None).items
    assert (entry.seq, entry.action, entry.actor) == (1, "project.created", ALICE.principal)
    assert svc.verify_audit(ALICE, P).ok


def test_my_projects_lists_created_and_joined_projects_once_each_with_their_role(svc: RegistryService) -> None:
    svc.create_project(ALICE, NewProject(name="a-first"))
    svc.create_project(BOB, NewProject(name="b-second"))
    svc.set_member(BOB, "b-second", ALICE.principal, Role.VIEWER)
    svc.create_project(ALICE, NewProject(name="c-third"))

    def listed(actor: Any, limit: int) -> list[tuple[str, str]]:
        out, cursor = [], None
        while True:
            page = svc.list_projects(actor, limit, cursor)
            out += [(m.project, m.role.value) for m in page.items]
            if page.cursor is None:
                return out
            cursor = page.cursor

    expected = [("a-first", "admin"), ("b-second", "viewer"), ("c-third", "admin")]
    assert listed(ALICE, 1) == listed(ALICE, 10) == expected
    # the creator's own membership changes: it is listed once, with the new role
    svc.set_member(ALICE, "a-first", BOB.principal, Role.ADMIN)
    svc.set_member(ALICE, "a-first", ALICE.principal, Role.TRAINER)
    assert listed(ALICE, 1) == [("a-first", "trainer"), ("b-second", "viewer"), ("c-third", "admin")]
    assert listed(BOB, 10) == [("a-first", "admin"), ("b-second", "admin")]
    svc.set_member(BOB, "a-first", ALICE.principal, None)
    assert listed(ALICE, 10) == [("b-second", "viewer"), ("c-third", "admin")]
    svc.set_member(BOB, "a-first", ALICE.principal, Role.VIEWER)
    assert listed(ALICE, 10)[0] == ("a-first", "viewer")


def test_members_roles_and_last_admin(svc: RegistryService, ds: str) -> None:
    svc.set_member(ALICE, P, BOB.principal, Role.VIEWER)
    with pytest.raises(Forbidden) as denied:
        svc.set_member(BOB, P, CAROL.principal, Role.ADMIN)
    assert denied.value.details["required_role"] == "admin"
    with pytest.raises(LastAdmin):
        svc.set_member(ALICE, P, ALICE.principal, Role.VIEWER)
    svc.set_member(ALICE, P, BOB.principal, Role.ADMIN)
    svc.set_member(BOB, P, ALICE.principal, None)
    assert svc.get_project(BOB, P).members == {BOB.principal: Role.ADMIN}
    assert svc.list_projects(ALICE, 10, None).items == []
    with pytest.raises(Forbidden):
        svc.get_project(ALICE, P)


def test_assumed_role_sessions_act_with_their_role(svc: RegistryService, ds: str) -> None:
    role = "arn:aws:iam::123456789012:role/Approvers"
    svc.set_member(ALICE, P, role, Role.APPROVER)
    from lepton.registry.service import Actor

    session = Actor("arn:aws:sts::123456789012:assumed-role/Approvers/carol-session")
    n = register(svc, ds, "job-1")
    assert svc.approve(session, P, n, "ok").status is VersionStatus.APPROVED
    assert [m.project for m in svc.list_projects(session, 10, None).items] == [P]


def test_project_settings_change_is_audited(svc: RegistryService, ds: str) -> None:
    before = svc.get_project(ALICE, P).audit_seq
    updated = svc.update_project(ALICE, P, ProjectPatch(description="new"))
    assert updated.description == "new" and updated.audit_seq == before + 1
    # the same value again changes nothing and writes no audit entry
    assert svc.update_project(ALICE, P, ProjectPatch(description="new")).audit_seq == before + 1
    with pytest.raises(ProjectNotFound):
        svc.update_project(ALICE, "nope", ProjectPatch(description="x"))


# ------------------------------------------------------------------------------------- versions


def test_register_gives_dense_numbers_lineage_and_event(
    svc: RegistryService, ds: str, publisher: RecordingPublisher
) -> None:
    one = register(svc, ds, "job-1")
    two = register(svc, ds, "job-2", parent_version=one)
    three = register(svc, ds, "job-3", parent_version=two, branch="experiment")
    assert (one, two, three) == (1, 2, 3)
    v3 = svc.get_version(ALICE, P, three)
    assert v3.ancestry == [2, 1] and v3.branch == "experiment" and v3.parent_version == 2
    assert svc.get_version(ALICE, P, two).branch == "main"
    registered = [e for e in publisher.events if e.detail_type == "ModelVersionRegistered"]
    assert [e.version for e in registered] == [1, 2, 3]  # type: ignore[attr-defined]


def test_register_checks_references(svc: RegistryService, ds: str) -> None:
    with pytest.raises(ValidationFailed) as bad:
        svc.register_version(ALICE, P, registration(ds, "job-1", parent_version=7))
    assert bad.value.details["field"] == "parent_version"
    with pytest.raises(ValidationFailed) as bad:
        svc.register_version(ALICE, P, registration("ds-" + "f" * 20, "job-1"))
    assert bad.value.details["field"] == "dataset_id"
    with pytest.raises(ProjectNotFound):
        svc.register_version(ALICE, "nope", registration(ds, "job-1"))
    assert svc.get_project(ALICE, P).version_count == 0


def test_same_training_job_is_idempotent_and_different_core_is_409(svc: RegistryService, ds: str) -> None:
    first, created = svc.register_version(ALICE, P, registration(ds, "job-1"))
    again, created_again = svc.register_version(ALICE, P, registration(ds, "job-1"))
    assert created and not created_again and again == first
    with pytest.raises(AlreadyExists) as conflict:
        svc.register_version(ALICE, P, registration(ds, "job-1", metrics={"validation:accuracy": 0.1}))
    assert conflict.value.details["version"] == 1
    assert svc.get_project(ALICE, P).version_count == 1


def test_roles_guard_every_change(svc: RegistryService, ds: str) -> None:
    svc.set_member(ALICE, P, BOB.principal, Role.VIEWER)
    svc.set_member(ALICE, P, CAROL.principal, Role.TRAINER)
    with pytest.raises(Forbidden):
        svc.register_version(BOB, P, registration(ds, "job-1"))
    n = svc.register_version(CAROL, P, registration(ds, "job-1"))[0].number
    with pytest.raises(Forbidden):
        svc.approve(CAROL, P, n, "self approval")
    with pytest.raises(Forbidden):
        svc.get_version(MALLORY, P, n)
    deploying(svc, P, n)
    with pytest.raises(Forbidden) as denied:
        svc.promote(BOB, P, n, "viewer moving production")
    assert denied.value.details["required_role"] == "approver"
    assert svc.resolve_alias(P, "production") is None
    assert svc.get_version(BOB, P, n).status is VersionStatus.DEPLOYING


def test_four_eyes_policy(svc: RegistryService, ds: str) -> None:
    from lepton.registry.models import PromotionPolicy

    svc.update_project(ALICE, P, ProjectPatch(policy=PromotionPolicy(separate_approver=True)))
    svc.set_member(ALICE, P, CAROL.principal, Role.APPROVER)
    n = register(svc, ds, "job-1")
    with pytest.raises(Forbidden):
        svc.approve(ALICE, P, n, "my own")
    assert svc.approve(CAROL, P, n, "reviewed").status is VersionStatus.APPROVED


def test_every_status_edge_and_every_illegal_one(svc: RegistryService, ds: str) -> None:
    n = register(svc, ds, "job-1")
    with pytest.raises(IllegalTransition) as illegal:
        svc.transition(ALICE, P, n, VersionStatus.DEPLOYING, "skip approval")
    assert illegal.value.details["current_status"] == "REGISTERED"
    assert "REGISTERED" in illegal.value.message
    svc.reject(ALICE, P, n, "worse than champion")
    for target in (VersionStatus.APPROVED, VersionStatus.DEPLOYING, VersionStatus.FAILED):
        with pytest.raises(IllegalTransition) as illegal:
            svc.transition(ALICE, P, n, target, "no")
        assert illegal.value.details["current_status"] == "REJECTED"
    assert svc.retire(ALICE, P, n, "cleanup").status is VersionStatus.ARCHIVED
    with pytest.raises(IllegalTransition):
        svc.approve(ALICE, P, n, "too late")
    for status in (VersionStatus.PRODUCTION, VersionStatus.SUPERSEDED, VersionStatus.ROLLED_BACK):
        with pytest.raises(IllegalTransition):
            svc.transition(ALICE, P, n, status, "only with the alias")
    assert ALLOWED_TRANSITIONS[VersionStatus.ARCHIVED] == frozenset()


def test_status_changes_are_audited_and_published(svc: RegistryService, ds: str, publisher: RecordingPublisher) -> None:
    n = register(svc, ds, "job-1")
    seq = svc.get_project(ALICE, P).audit_seq
    svc.approve(ALICE, P, n, "good")
    entry = svc.audit_page(ALICE, P, 1, None).items[0]
    assert entry.seq == seq + 1 and entry.action == "version.approved" and entry.reason == "good"
    assert entry.before == {"status": "REGISTERED"} and entry.after == {"status": "APPROVED"}
    changed = [e for e in publisher.events if e.detail_type == "ModelVersionStatusChanged"]
    assert changed[-1].model_dump(include={"version", "from_status", "to_status", "audit_seq"}) == {
        "version": n,
        "from_status": "REGISTERED",
        "to_status": "APPROVED",
        "audit_seq": seq + 1,
    }


def test_core_is_immutable_tags_and_description_are_not(svc: RegistryService, ds: str, ddb: Any, table: str) -> None:
    n = register(svc, ds, "job-1", tags={"team": "a"})
    updated = svc.update_version(ALICE, P, n, VersionPatch(description="first", set_tags={"stage": "x"}))
    assert updated.tags == {"team": "a", "stage": "x"} and updated.description == "first"
    updated = svc.update_version(ALICE, P, n, VersionPatch(remove_tags=["team"]))
    assert updated.tags == {"stage": "x"}
    tagged = svc.list_versions(ALICE, P, VersionQuery(tag="stage", tag_value="x"), 10, None)
    assert [v.number for v in tagged.items] == [n]
    with pytest.raises(ValueError, match="set_tags"):
        VersionPatch(set_tags={"metrics": "x"}, remove_tags=["metrics"])
    # editing the stored core outside the registry is detected on read
    key = {"pk": {"S": f"PROJECT#{P}"}, "sk": {"S": "VERSION#0000000001"}}
    item = ddb.get_item(TableName=table, Key=key)["Item"]
    item["body"]["S"] = item["body"]["S"].replace('"validation:accuracy":0.9', '"validation:accuracy":0.99')
    ddb.put_item(TableName=table, Item=item)
    with pytest.raises(IntegrityError):
        svc.get_version(ALICE, P, n)


def test_listing_filters_and_cursor(svc: RegistryService, ds: str) -> None:
    for i in range(7):
        register(svc, ds, f"job-{i}", branch="exp" if i % 2 else "main", tags={"parity": str(i % 2)})
    svc.approve(ALICE, P, 2, "ok")
    svc.approve(ALICE, P, 4, "ok")
    seen: list[int] = []
    cursor = None
    while True:
        page = svc.list_versions(ALICE, P, VersionQuery(), 3, cursor)
        seen += [v.number for v in page.items]
        cursor = page.cursor
        if cursor is None:
            break
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    oldest = svc.list_versions(ALICE, P, VersionQuery(newest_first=False), 2, None)
    assert [v.number for v in oldest.items] == [1, 2]
    approved = svc.list_versions(ALICE, P, VersionQuery(status=VersionStatus.APPROVED), 10, None)
    assert [v.number for v in approved.items] == [4, 2]
    branch = svc.list_versions(ALICE, P, VersionQuery(branch="exp"), 10, None)
    assert [v.number for v in branch.items] == [6, 4, 2]
    both = svc.list_versions(ALICE, P, VersionQuery(branch="exp", status=VersionStatus.APPROVED), 10, None)
    assert [v.number for v in both.items] == [4, 2]
    tagged = svc.list_versions(ALICE, P, VersionQuery(tag="parity", tag_value="0"), 10, None)
    assert [v.number for v in tagged.items] == [7, 5, 3, 1]


def _unsigned(doc: str) -> str:
    import base64

    return base64.urlsafe_b64encode(doc.encode()).decode().rstrip("=") + ".AAAAAAAAAAAAAAAA"


def _signed(key: dict[str, str]) -> str:
    from lepton.registry import cursor as cursors

    token = cursors.encode(key)
    assert token is not None
    return token


@pytest.mark.parametrize(
    "cursor",
    [
        "not-base64!!",
        _unsigned('{"v":1}'),
        _unsigned('{"k":{"pk":"PROJECT#wine","sk":"VERSION#0000000001"},"v":1}'),
        # correctly signed, but for another project's listing, or for the audit listing
        _signed({"pk": "PROJECT#other", "sk": "VERSION#0000000001"}),
        _signed({"pk": "PROJECT#wine", "sk": "AUDIT#0000000001"}),
        "x" * 3000,
    ],
)
def test_tampered_cursor_is_refused_naming_cursor(svc: RegistryService, ds: str, cursor: str) -> None:
    register(svc, ds, "job-1")
    with pytest.raises(ValidationFailed) as bad:
        svc.list_versions(ALICE, P, VersionQuery(), 10, cursor)
    assert bad.value.details["field"] == "cursor"


def test_log_and_diff(svc: RegistryService, ds: str) -> None:
    datasets = [ds, svc.register_dataset(INGEST, dataset(P, 2)).dataset_id]
    one = register(svc, ds, "job-1", hyperparameters={"epochs": 10, "lr": 0.1, "dropout": 0.2})
    two = register(svc, ds, "job-2", parent_version=one)
    side = register(svc, ds, "job-3", parent_version=one, branch="wide")
    three = register(
        svc,
        datasets[1],
        "job-4",
        parent_version=two,
        hyperparameters={"epochs": 20, "lr": 0.1, "batch_size": 64},
        metrics={"validation:accuracy": 0.95, "validation:f1": 0.9},
        code_version="git-9z",
    )
    assert [v.number for v in svc.log(ALICE, P, three)] == [three, two, one]
    assert [v.number for v in svc.log(ALICE, P, three, limit=2)] == [three, two]
    d = svc.diff(ALICE, P, one, three)
    assert d.hyperparameters.added == {"batch_size": 64}
    assert d.hyperparameters.removed == {"dropout": 0.2}
    assert d.hyperparameters.changed["epochs"].model_dump() == {"a": 10, "b": 20}
    assert d.hyperparameters.unchanged == {"lr": 0.1}
    assert d.metrics["validation:accuracy"].delta == pytest.approx(0.05)
    assert d.metrics["validation:f1"].a is None and d.metrics["validation:f1"].delta is None
    assert not d.dataset.same and d.dataset.b == datasets[1]
    assert d.lineage.a_is_ancestor_of_b and not d.lineage.b_is_ancestor_of_a
    assert d.lineage.code_version is not None and d.lineage.code_version.b == "git-9z"
    sideways = svc.diff(ALICE, P, side, three)
    assert sideways.lineage.common_ancestor == one
    assert (sideways.lineage.a_branch, sideways.lineage.b_branch) == ("wide", "main")
    with pytest.raises(VersionNotFound):
        svc.diff(ALICE, P, one, 99)


# -------------------------------------------------------------------------------------- aliases


def test_promote_supersede_revert_rollback(svc: RegistryService, ds: str, publisher: RecordingPublisher) -> None:
    for i in range(1, 4):
        register(svc, ds, f"job-{i}")
        deploying(svc, P, i)
    svc.promote(ALICE, P, 1, "first")
    svc.promote(ALICE, P, 2, "second", expected_current=1)
    production = svc.get_alias(ALICE, P, "production")
    assert production.version == 2 and production.target.status is VersionStatus.PRODUCTION
    assert svc.get_alias(ALICE, P, "previous").version == 1
    assert svc.get_version(ALICE, P, 1).status is VersionStatus.SUPERSEDED
    assert {a.name: a.version for a in svc.list_aliases(ALICE, P)} == {"production": 2, "previous": 1}
    # an APPROVED or REGISTERED version cannot go to production: 409 naming its status
    n4 = register(svc, ds, "job-4")
    with pytest.raises(IllegalTransition) as illegal:
        svc.promote(ALICE, P, n4, "not deployed")
    assert illegal.value.details["current_status"] == "REGISTERED"
    # stale expectation: 409 naming the current production
    with pytest.raises(ConcurrentModification) as stale:
        svc.promote(ALICE, P, 3, "race", expected_current=1)
    assert stale.value.details["current_production"] == 2
    svc.promote(ALICE, P, 3, "third")
    # revert to 1 (SUPERSEDED): 3 becomes SUPERSEDED and previous; 2 leaves previous
    svc.revert(ALICE, P, 1, "3 is worse in prod")
    assert svc.get_alias(ALICE, P, "production").version == 1
    assert svc.get_alias(ALICE, P, "previous").version == 3
    assert {a.name: (a.version, a.target.status) for a in svc.list_aliases(ALICE, P)} == {
        "production": (1, VersionStatus.PRODUCTION),
        "previous": (3, VersionStatus.SUPERSEDED),
    }
    assert svc.get_version(ALICE, P, 2).status is VersionStatus.SUPERSEDED
    # rollback: 1 -> ROLLED_BACK, production back to 3, previous emptied
    svc.rollback(ALICE, P, "alarm")
    assert svc.get_alias(ALICE, P, "production").version == 3
    assert svc.get_version(ALICE, P, 1).status is VersionStatus.ROLLED_BACK
    with pytest.raises(AliasNotFound):
        svc.get_alias(ALICE, P, "previous")
    with pytest.raises(Conflict):
        svc.rollback(ALICE, P, "nothing to roll back to")
    # history is appended to, never rewritten
    history = svc.alias_history(ALICE, P, "production", at=None, limit=10, cursor=None).items
    assert [(h.version, h.action) for h in history] == [
        (3, "rollback"),
        (1, "revert"),
        (3, "promote"),
        (2, "promote"),
        (1, "promote"),
    ]
    moved = [e for e in publisher.events if e.detail_type == "AliasMoved"]
    assert [(e.alias, e.version) for e in moved][:3] == [("production", 1), ("production", 2), ("previous", 1)]  # type: ignore[attr-defined]
    assert svc.verify_audit(ALICE, P).ok


def test_what_was_in_production_at_time_t(svc: RegistryService, ds: str) -> None:
    for i in range(1, 4):
        register(svc, ds, f"job-{i}")
        deploying(svc, P, i)
    times = {}
    for i in range(1, 4):
        svc.promote(ALICE, P, i, f"release {i}")
        times[i] = svc.get_alias(ALICE, P, "production").updated_at

    def at(t: Any) -> int | None:
        items = svc.alias_history(ALICE, P, "production", at=t, limit=1, cursor=None).items
        return items[0].version if items else None

    assert at(times[1] - timedelta(seconds=1)) is None
    assert at(times[1]) == 1
    assert at(times[2] - timedelta(microseconds=1)) == 1
    assert at(times[2] + timedelta(microseconds=1)) == 2
    assert at(times[3] + timedelta(days=1)) == 3


def test_user_defined_aliases(svc: RegistryService, ds: str) -> None:
    one, two = register(svc, ds, "job-1"), register(svc, ds, "job-2")
    staging = svc.set_alias(ALICE, P, "staging", one, "try it")
    assert staging.target.status is VersionStatus.REGISTERED
    svc.approve(ALICE, P, one, "ok")  # the alias answer follows the version's status
    assert svc.get_alias(ALICE, P, "staging").target.status is VersionStatus.APPROVED
    with pytest.raises(ConcurrentModification):
        svc.set_alias(ALICE, P, "staging", two, expected_version=None)
    svc.set_alias(ALICE, P, "staging", two, "next", expected_version=one)
    assert [(a.name, a.version) for a in svc.list_aliases(ALICE, P)] == [("staging", two)]
    with pytest.raises(AliasReserved):
        svc.set_alias(ALICE, P, "previous", one)
    with pytest.raises(AliasReserved):
        svc.delete_alias(ALICE, P, "production")
    with pytest.raises(Conflict):
        svc.retire(ALICE, P, two, "aliased")  # REGISTERED -> ARCHIVED is not an edge either
    svc.delete_alias(ALICE, P, "staging", "done")
    with pytest.raises(AliasNotFound):
        svc.delete_alias(ALICE, P, "staging")
    assert [a.name for a in svc.list_aliases(ALICE, P)] == []
    history = svc.alias_history(ALICE, P, "staging", at=None, limit=10, cursor=None).items
    assert [(h.version, h.previous_version, h.action) for h in history] == [
        (None, two, "delete"),
        (two, one, "set"),
        (one, None, "set"),
    ]


# ----------------------------------------------------------------------------------------- runs


def test_branch_run_register_and_mark_failed(svc: RegistryService, ds: str, publisher: RecordingPublisher) -> None:
    base = register(svc, ds, "job-1", hyperparameters={"epochs": 10, "lr": 0.1})
    run = svc.create_run(
        ALICE, P, NewRun(base_version=base, branch="bigger", overrides=RunOverrides(hyperparameters={"epochs": 30}))
    )
    assert run.status is RunStatus.PENDING and run.hyperparameters == {"epochs": 30, "lr": 0.1}
    assert run.dataset_id == ds and run.branch == "bigger" and run.base_version == base
    v, _ = svc.register_version(SYSTEM, P, registration(ds, "job-2", run_id=run.run_id))
    assert (v.branch, v.parent_version, v.run_id) == ("bigger", base, run.run_id)
    assert svc.get_run(ALICE, P, run.run_id).status is RunStatus.SUCCEEDED
    with pytest.raises(ValidationFailed):
        svc.register_version(SYSTEM, P, registration(ds, "job-3", run_id=run.run_id, branch="main"))
    # a later step fails: run and version FAILED with the cause; production untouched
    cause = FailureCause(error="SageMaker.ResourceLimitExceeded", cause="no ml.g5 capacity", step="Deploy")
    failed_run, failed_version = svc.mark_failed(SYSTEM, P, cause, run_id=run.run_id)
    assert failed_run is not None and failed_run.status is RunStatus.FAILED and failed_run.failure == cause
    assert failed_version is not None and failed_version.status is VersionStatus.FAILED
    assert failed_version.failure == cause
    # idempotent: the state machine may retry
    seq = svc.get_project(ALICE, P).audit_seq
    svc.mark_failed(SYSTEM, P, cause, run_id=run.run_id)
    assert svc.get_project(ALICE, P).audit_seq == seq
    assert "RunFailed" in publisher.types()


def test_a_run_begins_to_run_once_and_only_while_pending(
    svc: RegistryService, ds: str, publisher: RecordingPublisher
) -> None:
    run = svc.create_run(ALICE, P, NewRun(overrides=RunOverrides(dataset_id=ds)))
    execution = "arn:aws:states:us-east-1:123456789012:execution:lepton-dev-lifecycle:x"
    running = svc.begin_run(SYSTEM, P, run.run_id, execution)
    assert (running.status, running.execution_arn) == (RunStatus.RUNNING, execution)
    assert svc.get_run(ALICE, P, run.run_id) == running and "RunStarted" in publisher.types()
    svc.register_version(SYSTEM, P, registration(ds, "job-1", run_id=run.run_id))
    assert svc.get_run(ALICE, P, run.run_id).status is RunStatus.SUCCEEDED
    with pytest.raises(IllegalTransition, match="is SUCCEEDED") as refused:
        svc.begin_run(SYSTEM, P, run.run_id, execution)  # ended: not even its own execution restarts it
    assert refused.value.details["current_status"] == "SUCCEEDED"
    with pytest.raises(RunNotFound):
        svc.begin_run(SYSTEM, P, "run-0000000000", execution)
    svc.set_member(ALICE, P, BOB.principal, Role.VIEWER)
    with pytest.raises(Forbidden):
        svc.begin_run(BOB, P, run.run_id, execution)


def test_mark_failed_never_touches_production(svc: RegistryService, ds: str) -> None:
    n = register(svc, ds, "job-1")
    deploying(svc, P, n)
    svc.promote(ALICE, P, n, "go")
    with pytest.raises(IllegalTransition) as illegal:
        svc.mark_failed(SYSTEM, P, FailureCause(error="States.Timeout"), version=n)
    assert illegal.value.details["current_status"] == "PRODUCTION"
    assert svc.get_version(ALICE, P, n).status is VersionStatus.PRODUCTION


# ----------------------------------------------------------------------------------------- audit


def test_verify_finds_edited_and_deleted_entries(svc: RegistryService, ds: str, ddb: Any, table: str) -> None:
    for i in range(3):
        register(svc, ds, f"job-{i}")
    report = svc.verify_audit(ALICE, P)
    assert report.ok and report.checked == report.head_seq == 5  # created, dataset, 3 versions
    key = {"pk": {"S": f"PROJECT#{P}"}, "sk": {"S": "AUDIT#0000000003"}}
    original = ddb.get_item(TableName=table, Key=key)["Item"]
    edited = dict(original)
    edited["body"] = {"S": original["body"]["S"].replace(ALICE.principal, MALLORY.principal)}
    ddb.put_item(TableName=table, Item=edited)
    report = svc.verify_audit(ALICE, P)
    assert (report.ok, report.first_bad, report.problem) == (False, 3, "edited")
    ddb.put_item(TableName=table, Item=original)
    assert svc.verify_audit(ALICE, P).ok
    ddb.delete_item(TableName=table, Key=key)
    report = svc.verify_audit(ALICE, P)
    assert (report.ok, report.first_bad, report.problem) == (False, 3, "missing")
    ddb.put_item(TableName=table, Item=original)
    last = {"pk": {"S": f"PROJECT#{P}"}, "sk": {"S": "AUDIT#0000000005"}}
    ddb.delete_item(TableName=table, Key=last)
    report = svc.verify_audit(ALICE, P)
    assert (report.ok, report.first_bad, report.problem) == (False, 5, "missing")


@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_the_audit_log_pages_through_every_entry_in_both_orders(svc: RegistryService, ds: str, limit: int) -> None:
    for i in range(3):
        register(svc, ds, f"job-{i}")
    head = svc.get_project(ALICE, P).audit_seq

    def walk(newest_first: bool) -> list[int]:
        seqs, cursor = [], None
        for _ in range(head + 2):
            page = svc.audit_page(ALICE, P, limit, cursor, newest_first=newest_first)
            assert len(page.items) <= limit
            seqs += [e.seq for e in page.items]
            if page.cursor is None:
                return seqs
            cursor = page.cursor
        raise AssertionError("the cursor never ends")

    assert walk(newest_first=False) == list(range(1, head + 1))
    assert walk(newest_first=True) == list(range(head, 0, -1))


def test_verify_finds_an_edited_or_deleted_first_entry(svc: RegistryService, ds: str, ddb: Any, table: str) -> None:
    register(svc, ds, "job-1")
    key = {"pk": {"S": f"PROJECT#{P}"}, "sk": {"S": "PROJECT"}}
    original = ddb.get_item(TableName=table, Key=key)["Item"]
    edited = {**original, "genesis": {"S": original["genesis"]["S"].replace(ALICE.principal, MALLORY.principal)}}
    ddb.put_item(TableName=table, Item=edited)
    report = svc.verify_audit(ALICE, P)
    assert (report.ok, report.first_bad, report.problem) == (False, 1, "edited")
    ddb.put_item(TableName=table, Item={k: v for k, v in original.items() if k != "genesis"})
    report = svc.verify_audit(ALICE, P)
    assert (report.ok, report.first_bad, report.problem) == (False, 1, "missing")
    ddb.put_item(TableName=table, Item=original)
    assert svc.verify_audit(ALICE, P).ok


def test_failed_change_writes_nothing(svc: RegistryService, ds: str, ddb: Any, table: str) -> None:
    n = register(svc, ds, "job-1")
    before = table_snapshot(ddb, table)
    for attempt in (
        lambda: svc.transition(ALICE, P, n, VersionStatus.DEPLOYING, "skip"),
        lambda: svc.promote(ALICE, P, n, "not deployed"),
        lambda: svc.register_version(ALICE, P, registration(ds, "job-x", parent_version=9)),
        lambda: svc.set_alias(ALICE, P, "staging", 42),
        lambda: svc.set_member(ALICE, P, ALICE.principal, None),
    ):
        with pytest.raises((IllegalTransition, ValidationFailed, VersionNotFound, LastAdmin)):
            attempt()
    assert table_snapshot(ddb, table) == before


def test_contention_is_retried_then_409(table: str) -> None:
    """A commit that keeps conflicting is retried with back-off, then answered 409."""
    from registry_testkit import make_service

    from lepton.registry.ports import CommitConflict
    from lepton.registry.service import RetryPolicy

    svc = make_service(table, retry=RetryPolicy(max_attempts=3, base_s=0.0, cap_s=0.0))
    ds_id = seed_project(svc, P)[0].dataset_id
    real_commit = svc.repo.commit
    calls = {"n": 0}

    def always_conflicting(change: Any) -> None:
        calls["n"] += 1
        raise CommitConflict(["project"])

    svc.repo.commit = always_conflicting  # type: ignore[method-assign]
    with pytest.raises(ConcurrentModification):
        svc.register_version(ALICE, P, registration(ds_id, "job-1"))
    assert calls["n"] == 3
    svc.repo.commit = real_commit  # type: ignore[method-assign]
    assert svc.register_version(ALICE, P, registration(ds_id, "job-1"))[0].number == 1


def test_a_version_aliases_point_at_cannot_be_archived(svc: RegistryService, ds: str) -> None:
    for i in (1, 2):
        register(svc, ds, f"job-{i}")
        deploying(svc, P, i)
    svc.promote(ALICE, P, 1, "one")
    svc.promote(ALICE, P, 2, "two")
    svc.set_alias(ALICE, P, "champion", 1, "keep an eye on it")
    svc.set_alias(ALICE, P, "champion", 2, "moved")
    # 1 is SUPERSEDED and `previous`: archiving it would leave an alias pointing at an archived version
    with pytest.raises(Conflict) as blocked:
        svc.retire(ALICE, P, 1, "old")
    assert blocked.value.details["aliases"] == ["previous"]
    svc.revert(ALICE, P, 1, "back to one")
    # the champion alias follows its version's status (2 went PRODUCTION -> SUPERSEDED)
    assert svc.get_alias(ALICE, P, "champion").target.status is VersionStatus.SUPERSEDED
    with pytest.raises(Conflict) as blocked:
        svc.retire(ALICE, P, 2, "old")
    assert sorted(blocked.value.details["aliases"]) == ["champion", "previous"]
