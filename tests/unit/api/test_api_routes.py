"""The REST API end to end through the Lambda handler: statuses, bodies, roles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from api_testkit import Api
from registry_testkit import ALICE, BOB, CAROL, INGEST, MALLORY, SYSTEM, dataset

from lepton.registry.models import FailureCause, Role

P = "wine"
DAVE = "arn:aws:iam::123456789012:user/dave"


def version_body(ds: str, job: str, **kw: Any) -> dict[str, Any]:
    body = {
        "artifact_uri": f"s3://lepton-models/{job}/model.tar.gz",
        "artifact_sha256": "d" * 64,
        "dataset_id": ds,
        "training_job": job,
        "code_version": "git-abc",
        "hyperparameters": {"epochs": 10, "learning_rate": 0.01},
        "metrics": {"validation:accuracy": 0.9},
    }
    body.update(kw)
    return body


@pytest.fixture
def ds(api: Api) -> str:
    assert api.call("POST", "/projects", {"name": P, "description": "wine"}).status == 201
    for who, role in ((BOB, "viewer"), (CAROL, "approver")):
        r = api.call("PUT", f"/projects/{P}/members", {"principal": who.principal, "role": role})
        assert r.status == 200, r.body
    r = api.call("PUT", f"/projects/{P}/members", {"principal": DAVE, "role": "trainer"})
    assert r.status == 200
    return api.svc.register_dataset(INGEST, dataset(P, 1)).dataset_id


def test_projects_and_members(api: Api, ds: str) -> None:
    r = api.call("GET", f"/projects/{P}", caller=BOB)
    assert r.status == 200 and r.body["members"][BOB.principal] == "viewer"
    assert [m["project"] for m in api.call("GET", "/projects", caller=CAROL).body["items"]] == [P]
    r = api.call("PATCH", f"/projects/{P}", {"description": "red and white"}, caller=BOB)
    assert r.status == 403 and r.body["details"]["required_role"] == "admin"
    r = api.call("PATCH", f"/projects/{P}", {"description": "red and white"})
    assert r.status == 200 and r.body["description"] == "red and white"
    r = api.call("GET", f"/projects/{P}/members", caller=BOB)
    assert {m["principal"]: m["role"] for m in r.body}[CAROL.principal] == "approver"
    r = api.call("DELETE", f"/projects/{P}/members", query={"principal": BOB.principal})
    assert r.status == 200 and BOB.principal not in {m["principal"] for m in r.body}
    assert api.call("GET", f"/projects/{P}", caller=BOB).status == 403
    r = api.call("DELETE", f"/projects/{P}/members", query={"principal": ALICE.principal})
    assert (r.status, r.error) == (409, "last_admin")
    assert api.call("POST", "/projects", {"name": P}).status == 409


def test_register_list_detail_and_idempotency(api: Api, ds: str) -> None:
    r = api.call("POST", f"/projects/{P}/versions", version_body(ds, "job-1", tags={"team": "a"}), caller=DAVE)
    assert r.status == 201 and r.body["number"] == 1 and r.body["status"] == "REGISTERED"
    assert r.headers["Location"] == f"/projects/{P}/versions/1"
    again = api.call("POST", f"/projects/{P}/versions", version_body(ds, "job-1", tags={"team": "a"}), caller=DAVE)
    assert again.status == 200 and again.body["number"] == 1
    r = api.call("POST", f"/projects/{P}/versions", version_body(ds, "job-1", metrics={"x": 1.0}), caller=DAVE)
    assert (r.status, r.error) == (409, "already_exists")
    assert api.call("POST", f"/projects/{P}/versions", version_body(ds, "job-2"), caller=BOB).status == 403
    for i in range(2, 6):
        assert api.call("POST", f"/projects/{P}/versions", version_body(ds, f"job-{i}", branch="exp")).status == 201
    page = api.call("GET", f"/projects/{P}/versions", query={"limit": "2"}, caller=BOB)
    assert [v["number"] for v in page.body["items"]] == [5, 4]
    page2 = api.call("GET", f"/projects/{P}/versions", query={"limit": "2", "cursor": page.body["next_cursor"]})
    assert [v["number"] for v in page2.body["items"]] == [3, 2]
    branch = api.call("GET", f"/projects/{P}/versions", query={"branch": "exp", "order": "oldest"})
    assert [v["number"] for v in branch.body["items"]] == [2, 3, 4, 5]
    tagged = api.call("GET", f"/projects/{P}/versions", query={"tag": "team=a"})
    assert [v["number"] for v in tagged.body["items"]] == [1]
    r = api.call("GET", f"/projects/{P}/versions/1", caller=BOB)
    assert r.status == 200 and r.body["hyperparameters"] == {"epochs": 10, "learning_rate": 0.01}


def test_immutable_core_cannot_be_patched(api: Api, ds: str) -> None:
    api.call("POST", f"/projects/{P}/versions", version_body(ds, "job-1"))
    before = api.snapshot()
    core = (("metrics", {"validation:accuracy": 1.0}), ("artifact_sha256", "e" * 64), ("status", "PRODUCTION"))
    for field, value in core:
        r = api.call("PATCH", f"/projects/{P}/versions/1", {"description": "x", field: value})
        assert r.status == 400 and f"body.{field}" in r.fields(), r.body
    assert api.snapshot() == before
    r = api.call("PATCH", f"/projects/{P}/versions/1", {"description": "tuned", "set_tags": {"stage": "canary"}})
    assert r.status == 200 and (r.body["description"], r.body["tags"]) == ("tuned", {"stage": "canary"})
    assert api.call("PUT", f"/projects/{P}/versions/1/tags/owner", {"value": "ml"}).body["tags"]["owner"] == "ml"
    assert "stage" not in api.call("DELETE", f"/projects/{P}/versions/1/tags/stage").body["tags"]


def test_status_routes_roles_and_409_naming_the_status(api: Api, ds: str) -> None:
    api.call("POST", f"/projects/{P}/versions", version_body(ds, "job-1"))
    r = api.call("POST", f"/projects/{P}/versions/1/transition", {"status": "DEPLOYING", "reason": "skip"})
    assert (r.status, r.error, r.body["details"]["current_status"]) == (409, "illegal_transition", "REGISTERED")
    assert api.call("POST", f"/projects/{P}/versions/1/approve", {"reason": "ok"}, caller=DAVE).status == 403
    r = api.call("POST", f"/projects/{P}/versions/1/approve", {"reason": "beats champion"}, caller=CAROL)
    assert r.status == 200 and r.body["status"] == "APPROVED"
    r = api.call("POST", f"/projects/{P}/versions/1/reject", {"reason": "changed my mind"}, caller=CAROL)
    assert r.status == 409 and r.body["details"]["current_status"] == "APPROVED"
    r = api.call("POST", f"/projects/{P}/versions/1/transition", {"status": "DEPLOYING", "reason": "go"}, caller=CAROL)
    assert r.body["status"] == "DEPLOYING"
    r = api.call("POST", f"/projects/{P}/versions/1/promote", {"reason": "viewer"}, caller=BOB)
    assert (r.status, r.body["details"]["required_role"]) == (403, "approver")
    r = api.call("PUT", f"/projects/{P}/aliases/production", {"version": 1, "reason": "viewer"}, caller=BOB)
    assert r.status == 403
    assert api.call("GET", f"/projects/{P}/aliases/production", caller=BOB).status == 404
    ship = {"reason": "ship", "expected_current": None}
    r = api.call("POST", f"/projects/{P}/versions/1/promote", ship, caller=CAROL)
    assert r.status == 200 and r.body["version"] == 1 and r.body["target"]["status"] == "PRODUCTION"
    r = api.call("GET", f"/projects/{P}/aliases/production", caller=BOB)
    assert r.body["target"]["artifact_sha256"] == "d" * 64
    r = api.call("POST", f"/projects/{P}/versions/1/retire", {"reason": "old"})
    assert r.status == 409 and r.body["details"]["current_status"] == "PRODUCTION"


def test_promote_revert_rollback_history(api: Api, ds: str) -> None:
    for i in (1, 2):
        api.call("POST", f"/projects/{P}/versions", version_body(ds, f"job-{i}"))
        api.call("POST", f"/projects/{P}/versions/{i}/approve", {"reason": "ok"})
        api.call("POST", f"/projects/{P}/versions/{i}/transition", {"status": "DEPLOYING", "reason": "go"})
    api.call("POST", f"/projects/{P}/versions/1/promote", {"reason": "one"})
    between = datetime.now(UTC)
    r = api.call("POST", f"/projects/{P}/versions/2/promote", {"reason": "two", "expected_current": 2})
    assert (r.status, r.error, r.body["details"]["current_production"]) == (409, "concurrent_modification", 1)
    assert api.call("POST", f"/projects/{P}/versions/2/promote", {"reason": "two", "expected_current": 1}).status == 200
    r = api.call("POST", f"/projects/{P}/revert", {"version": 1, "reason": "back"}, caller=CAROL)
    assert r.status == 200 and r.body["version"] == 1
    r = api.call("POST", f"/projects/{P}/rollback", {"reason": "alarm"}, caller=CAROL)
    assert r.status == 200 and r.body["version"] == 2
    history = api.call("GET", f"/projects/{P}/aliases/production/history")
    assert [(h["version"], h["action"]) for h in history.body["items"]] == [
        (2, "rollback"),
        (1, "revert"),
        (2, "promote"),
        (1, "promote"),
    ]
    at = api.call("GET", f"/projects/{P}/aliases/production/history", query={"at": between.isoformat(), "limit": "1"})
    assert [h["version"] for h in at.body["items"]] == [1]
    aliases = api.call("GET", f"/projects/{P}/aliases")
    assert {a["name"]: a["version"] for a in aliases.body} == {"production": 2}


def test_custom_alias_log_diff_runs_datasets_audit(api: Api, ds: str) -> None:
    api.call("POST", f"/projects/{P}/versions", version_body(ds, "job-1"))
    child = version_body(ds, "job-2", parent_version=1, hyperparameters={"epochs": 20})
    api.call("POST", f"/projects/{P}/versions", child)
    r = api.call("PUT", f"/projects/{P}/aliases/staging", {"version": 2, "reason": "try"}, caller=DAVE)
    assert r.status == 200 and r.body["name"] == "staging"
    assert api.call("PUT", f"/projects/{P}/aliases/previous", {"version": 1}, caller=CAROL).error == "alias_reserved"
    assert api.call("DELETE", f"/projects/{P}/aliases/staging", query={"reason": "done"}, caller=DAVE).status == 204
    log = api.call("GET", f"/projects/{P}/versions/2/log")
    assert [v["number"] for v in log.body] == [2, 1]
    diff = api.call("GET", f"/projects/{P}/versions/1/diff/2")
    assert diff.body["hyperparameters"]["changed"]["epochs"] == {"a": 10, "b": 20}
    assert diff.body["hyperparameters"]["removed"] == {"learning_rate": 0.01}
    branch = {"branch": "wide", "overrides": {"hyperparameters": {"epochs": 40}}}
    run = api.call("POST", f"/projects/{P}/versions/2/branches", branch)
    assert run.status == 201 and run.body["base_version"] == 2 and run.body["hyperparameters"]["epochs"] == 40
    assert api.call("GET", f"/projects/{P}/runs/{run.body['run_id']}").body["branch"] == "wide"
    assert [x["run_id"] for x in api.call("GET", f"/projects/{P}/runs").body["items"]] == [run.body["run_id"]]
    second = api.call("POST", f"/projects/{P}/runs", {"overrides": {"dataset_id": ds}})
    assert second.status == 201
    pending = api.call("GET", f"/projects/{P}/runs", query={"status": "PENDING"}).body["items"]
    assert sorted(x["run_id"] for x in pending) == sorted([second.body["run_id"], run.body["run_id"]])
    running = api.call("GET", f"/projects/{P}/runs", query={"status": "RUNNING"})
    assert running.body == {"items": [], "next_cursor": None}  # nothing began to run in this world
    assert [d["dataset_id"] for d in api.call("GET", f"/projects/{P}/datasets").body["items"]] == [ds]
    assert api.call("GET", f"/projects/{P}/datasets/{ds}").body["number"] == 1
    assert api.call("GET", f"/projects/{P}/rejections").body == {"items": [], "next_cursor": None}
    audit = api.call("GET", f"/projects/{P}/audit", query={"limit": "3"}, caller=BOB)
    assert len(audit.body["items"]) == 3 and audit.body["next_cursor"]
    assert audit.body["items"][0]["seq"] > audit.body["items"][1]["seq"]
    verify = api.call("GET", f"/projects/{P}/audit/verify", caller=BOB)
    assert verify.status == 200 and verify.body["ok"] and verify.body["checked"] == verify.body["head_seq"]


def test_recording_a_run_starts_its_lifecycle_execution(api: Api, ds: str) -> None:
    """POST .../runs and POST .../versions/<n>/branches record the run and start the lifecycle for
    it, named <project>-<run_id>; .../start starts a PENDING run again without a second execution."""
    api.call("POST", f"/projects/{P}/versions", version_body(ds, "job-1"))
    run = api.call("POST", f"/projects/{P}/runs", {"overrides": {"dataset_id": ds}}, caller=DAVE)
    assert run.status == 201, run.body
    branch = api.call("POST", f"/projects/{P}/versions/1/branches", {"branch": "wide"}, caller=DAVE)
    assert branch.status == 201, branch.body
    names = [f"{P}-{run.body['run_id']}", f"{P}-{branch.body['run_id']}"]
    assert sorted(api.executions(), key=lambda e: e["name"]) == sorted(
        [{"name": n, "input": {"project": P, "dataset_id": None, "run_id": n.removeprefix(f"{P}-")}} for n in names],
        key=lambda e: e["name"],
    )
    assert run.body["execution_arn"].endswith(f":execution:lepton-test-lifecycle:{names[0]}")
    again = api.call("POST", f"/projects/{P}/runs/{run.body['run_id']}/start", caller=DAVE)
    assert again.status == 200
    assert again.body == {"run_id": run.body["run_id"], "execution_arn": run.body["execution_arn"]}
    assert len(api.executions()) == 2
    # a viewer starts nothing; a run that is no longer PENDING is not started again
    assert api.call("POST", f"/projects/{P}/runs/{run.body['run_id']}/start", caller=BOB).status == 403
    api.svc.mark_failed(SYSTEM, P, FailureCause(error="States.TaskFailed", step="Train"), run_id=run.body["run_id"])
    refused = api.call("POST", f"/projects/{P}/runs/{run.body['run_id']}/start", caller=DAVE)
    assert (refused.status, refused.error) == (409, "illegal_transition")
    assert refused.body["details"]["current_status"] == "FAILED"
    assert api.call("POST", f"/projects/{P}/runs/run-0000000000/start", caller=DAVE).status == 404


def test_a_run_whose_execution_did_not_start_is_kept_and_can_be_started(api: Api, ds: str) -> None:
    """Step Functions refusing the start (here: the state machine is gone) answers 503 naming the
    recorded run and how to start it; once it is back, .../start starts it."""
    definition = api.sfn.describe_state_machine(stateMachineArn=api.state_machine)["definition"]
    api.sfn.delete_state_machine(stateMachineArn=api.state_machine)
    r = api.call("POST", f"/projects/{P}/runs", {"overrides": {"dataset_id": ds}}, caller=DAVE)
    assert (r.status, r.error) == (503, "execution_not_started")
    run_id = r.body["details"]["run_id"]
    assert f"POST /projects/{P}/runs/{run_id}/start" in r.body["message"]
    assert api.call("GET", f"/projects/{P}/runs/{run_id}").body["status"] == "PENDING"
    api.sfn.create_state_machine(
        name="lepton-test-lifecycle", definition=definition, roleArn="arn:aws:iam::123456789012:role/lifecycle"
    )
    r = api.call("POST", f"/projects/{P}/runs/{run_id}/start", caller=DAVE)
    assert r.status == 200 and r.body["execution_arn"].endswith(f":{P}-{run_id}")
    assert api.executions() == [
        {"name": f"{P}-{run_id}", "input": {"project": P, "dataset_id": None, "run_id": run_id}}
    ]


def test_stopping_a_run_stops_its_execution_and_records_who_and_why(api: Api, ds: str) -> None:
    run = api.call("POST", f"/projects/{P}/runs", {"overrides": {"dataset_id": ds}}, caller=DAVE).body
    run_id, arn = run["run_id"], run["execution_arn"]
    api.svc.begin_run(SYSTEM, P, run_id, arn)  # PrepareTraining
    stop = f"/projects/{P}/runs/{run_id}/stop"
    assert api.call("POST", stop, {"reason": "wrong data"}, caller=BOB).status == 403
    missing = api.call("POST", stop, {}, caller=DAVE)
    assert (missing.status, missing.body["details"]["fields"][0]["field"]) == (400, "body.reason")
    r = api.call("POST", stop, {"reason": "wrong data"}, caller=DAVE)
    assert r.status == 200, r.body
    assert (r.body["status"], r.body["execution_arn"]) == ("STOPPED", arn)
    assert r.body["failure"] == {"error": "RunStopped", "cause": "wrong data", "step": None}
    assert api.sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"
    (entry,) = api.call("GET", f"/projects/{P}/audit", query={"limit": "1"}).body["items"]
    assert (entry["action"], entry["actor"], entry["reason"]) == ("run.stopped", DAVE, "wrong data")
    assert api.call("GET", f"/projects/{P}/runs", query={"status": "STOPPED"}).body["items"][0]["run_id"] == run_id
    # a repeated stop answers the STOPPED run as it is, and records nothing more
    audit = api.call("GET", f"/projects/{P}/audit").body["items"]
    again = api.call("POST", stop, {"reason": "another reason"}, caller=DAVE)
    assert (again.status, again.body) == (200, r.body)
    assert api.call("GET", f"/projects/{P}/audit").body["items"] == audit
    # an ended run is not stopped
    other = api.call("POST", f"/projects/{P}/runs", {"overrides": {"dataset_id": ds}}, caller=DAVE).body
    api.svc.mark_failed(SYSTEM, P, FailureCause(error="States.TaskFailed", step="Train"), run_id=other["run_id"])
    ended = api.call("POST", f"/projects/{P}/runs/{other['run_id']}/stop", {"reason": "x"}, caller=DAVE)
    assert (ended.status, ended.error, ended.body["details"]["current_status"]) == (409, "illegal_transition", "FAILED")
    assert api.call("POST", f"/projects/{P}/runs/run-0000000000/stop", {"reason": "x"}, caller=DAVE).status == 404


def test_a_pending_run_without_an_execution_is_stopped_and_a_refused_stop_is_asked_again(
    api: Api, ds: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import EndpointConnectionError

    from lepton.executions import StepFunctionsLifecycle

    # its execution never started (Step Functions refused the start: 503)
    definition = api.sfn.describe_state_machine(stateMachineArn=api.state_machine)["definition"]
    api.sfn.delete_state_machine(stateMachineArn=api.state_machine)
    pending = api.call("POST", f"/projects/{P}/runs", {"overrides": {"dataset_id": ds}}, caller=DAVE)
    assert pending.status == 503
    api.sfn.create_state_machine(
        name="lepton-test-lifecycle", definition=definition, roleArn="arn:aws:iam::123456789012:role/lifecycle"
    )
    run_id = pending.body["details"]["run_id"]
    stop = f"/projects/{P}/runs/{run_id}/stop"
    # Step Functions unreachable: the run is recorded STOPPED (the registry then refuses its
    # execution at its next step), and the 503 says to ask again
    calls: list[str] = []

    def unreachable(self: StepFunctionsLifecycle, arn: str, *_: Any) -> bool:
        calls.append(arn)
        raise EndpointConnectionError(endpoint_url="https://states.us-east-1.amazonaws.com")

    with monkeypatch.context() as patched:
        patched.setattr(StepFunctionsLifecycle, "stop", unreachable)
        r = api.call("POST", stop, {"reason": "not needed"}, caller=DAVE)
    assert (r.status, r.error, r.body["details"]["run_id"]) == (503, "execution_not_stopped", run_id)
    assert f"POST {stop}" in r.body["message"]
    run = api.call("GET", f"/projects/{P}/runs/{run_id}").body
    assert (run["status"], run["failure"]["cause"]) == ("STOPPED", "not needed")
    assert calls == [run["execution_arn"]] and run["execution_arn"].endswith(f":lepton-test-lifecycle:{P}-{run_id}")
    # asked again: its execution (never started) is stopped, and the run answered as it is
    r = api.call("POST", stop, {"reason": "not needed"}, caller=DAVE)
    assert (r.status, r.body) == (200, run)
    assert api.executions() == []
    assert api.call("POST", f"/projects/{P}/runs/{run_id}/start", caller=DAVE).status == 409


def test_unknown_ids_are_404(api: Api, ds: str) -> None:
    for path in (
        "/projects/nope",
        f"/projects/{P}/versions/99",
        f"/projects/{P}/versions/99/log",
        f"/projects/{P}/versions/1/diff/99",
        f"/projects/{P}/aliases/champion",
        f"/projects/{P}/datasets/ds-ffffffffffffffffffff",
        f"/projects/{P}/runs/run-0000000000",
        "/projects/nope/audit/verify",
    ):
        r = api.call("GET", path)
        assert r.status == 404 and r.error and r.error.endswith("not_found"), (path, r.body)
    assert api.call("GET", "/no/such/route").error == "route_not_found"


def test_identity_comes_from_the_request_context(api: Api, ds: str) -> None:
    r = api.call("GET", f"/projects/{P}", caller=None)
    assert r.status == 403 and "identity" in r.body["message"]
    assert api.call("GET", f"/projects/{P}", caller=MALLORY).status == 403
    created = api.call("POST", "/projects", {"name": "beer"}, caller=MALLORY)
    assert created.body["members"] == {MALLORY.principal: Role.ADMIN.value}
    from api_testkit import HANDLER
    from registry_testkit import LambdaContext, proxy_event

    event = proxy_event("GET", f"/projects/{P}")
    del event["requestContext"]["identity"]
    reply = HANDLER(event, LambdaContext())
    assert reply["statusCode"] == 403


def test_sample_api_events_are_served(api: Api, ds: str) -> None:
    """The events in events/api/ are well-formed REST proxy events this API answers."""
    import json

    from api_testkit import HANDLER
    from registry_testkit import ROOT, LambdaContext

    api.call("POST", f"/projects/{P}/versions", version_body(ds, "job-1"))
    for path in sorted((ROOT / "events" / "api").glob("*.json")):
        event = json.loads(path.read_text())
        assert event["requestContext"]["identity"]["userArn"].startswith("arn:aws:iam::")
        reply = HANDLER(event, LambdaContext())
        assert reply["statusCode"] < 500, (path.name, reply)
        assert json.loads(reply["body"]) is not None
