"""Every route, bad input: a 400 JSON error naming the field, never a 5xx, never a partial write."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from api_testkit import Api, Reply
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from registry_testkit import INGEST, dataset, deploying, registration

from lepton.api.app import openapi_document
from lepton.registry.commands import NewProject, NewRun
from lepton.registry.service import Actor

P = "wine"
ALICE = Actor("arn:aws:iam::123456789012:user/alice")
GOOD_PATH = {"project": P, "number": "1", "other": "2", "alias": "staging", "key": "team"}
# a value no path parameter accepts (patterns, integers >= 1)
BAD_PATH = {
    "project": ["A!", "x" * 41, "-wine"],
    "number": ["abc", "0", "-3", "1.5", "99999999999"],
    "other": ["abc", "0"],
    "alias": ["Prod!", "9x"],
    "key": ["bad key!", "k" * 65],
    "dataset_id": ["ds-XYZ", "nope"],
    "run_id": ["run-!", "r"],
}
BAD_QUERY = {
    "limit": ["0", "501", "abc", "-1"],
    "cursor": ["garbage", "x" * 3000],
    "status": ["BOGUS", "approved"],
    "order": ["sideways"],
    "branch": ["Bad/Branch"],
    "tag": ["bad key!=x"],
    "at": ["not-a-date", "2026-13-45"],
    "principal": ["not-an-arn"],
    "reason": ["x" * 1001],
}


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    doc = openapi_document()
    return [(m.upper(), path, op) for path, ops in doc["paths"].items() for m, op in ops.items()]


OPERATIONS = operations()


def concrete(path: str, values: dict[str, str] | None = None) -> str:
    values = {**GOOD_PATH, "dataset_id": WORLD["dataset_id"], "run_id": WORLD["run_id"], **(values or {})}
    return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], path)


WORLD: dict[str, str] = {}


@pytest.fixture
def world(api: Api) -> Api:
    svc = api.svc
    svc.create_project(ALICE, NewProject(name=P))
    ds = svc.register_dataset(INGEST, dataset(P, 1)).dataset_id
    for i in (1, 2):
        svc.register_version(ALICE, P, registration(ds, f"job-{i}"))
    deploying(svc, P, 1)
    svc.set_alias(ALICE, P, "staging", 2, "try")
    WORLD["dataset_id"] = ds
    WORLD["run_id"] = svc.create_run(ALICE, P, NewRun(base_version=1)).run_id
    return api


def assert_bad_request(r: Reply, field: str, where: str) -> None:
    assert r.status == 400, (where, r.status, r.body)
    assert r.error == "validation_failed", (where, r.body)
    assert any(f == field or f.startswith(field + ".") for f in r.fields()), (where, field, r.body)


def required_query(op: dict[str, Any]) -> dict[str, str]:
    return {
        p["name"]: "arn:aws:iam::123456789012:user/bob"
        for p in op.get("parameters", [])
        if p["in"] == "query" and p.get("required")
    }


def test_malformed_and_mistyped_bodies(world: Api) -> None:
    before = world.snapshot()
    for method, path, op in OPERATIONS:
        if "requestBody" not in op:
            continue
        url = concrete(path)
        for raw in ("{", "[1, 2", "not json", "{'single': 'quotes'}"):
            assert_bad_request(world.call(method, url, raw), "body", f"{method} {path} {raw!r}")
        for wrong in ([], 3, "text", None, True):
            r = world.call(method, url, json.dumps(wrong))
            assert r.status == 400 and r.error == "validation_failed" and r.fields(), (method, path, wrong, r.body)
        assert_bad_request(world.call(method, url, {"zz_unknown": 1}), "body.zz_unknown", f"{method} {path}")
    assert world.snapshot() == before


def test_every_required_body_field_is_named_when_missing(world: Api) -> None:
    before = world.snapshot()
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    for method, path, op in OPERATIONS:
        body = op.get("requestBody")
        if not body:
            continue
        ref = body["content"]["application/json"]["schema"].get("$ref", "")
        schema = schemas[ref.rsplit("/", 1)[-1]] if ref else {}
        for name in schema.get("required", []):
            r = world.call(method, concrete(path), {})
            assert_bad_request(r, f"body.{name}", f"{method} {path}")
    assert world.snapshot() == before


def test_bad_path_parameters(world: Api) -> None:
    before = world.snapshot()
    for method, path, op in OPERATIONS:
        for name in re.findall(r"{(\w+)}", path):
            for bad in BAD_PATH[name]:
                r = world.call(method, concrete(path, {name: bad}), {}, query=required_query(op) or None)
                assert_bad_request(r, f"path.{name}", f"{method} {path} {name}={bad}")
    assert world.snapshot() == before


def test_bad_and_unknown_query_parameters(world: Api) -> None:
    before = world.snapshot()
    for method, path, op in OPERATIONS:
        url = concrete(path)
        body = {} if "requestBody" in op else None
        r = world.call(method, url, body, query={**required_query(op), "zzz": "1"})
        assert_bad_request(r, "query.zzz", f"{method} {path}")
        for param in (p for p in op.get("parameters", []) if p["in"] == "query"):
            for bad in BAD_QUERY[param["name"]]:
                r = world.call(method, url, body, query={**required_query(op), param["name"]: bad})
                field = "cursor" if param["name"] == "cursor" and r.fields() == ["cursor"] else f"query.{param['name']}"
                assert_bad_request(r, field, f"{method} {path} {param['name']}={bad[:20]}")
    assert world.snapshot() == before


def test_out_of_range_body_values(world: Api) -> None:
    before = world.snapshot()
    base = {
        "artifact_uri": "s3://lepton-models/j/model.tar.gz",
        "artifact_sha256": "a" * 64,
        "dataset_id": WORLD["dataset_id"],
        "training_job": "job-9",
        "code_version": "abc",
    }
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", f"/projects/{P}/versions", {**base, "metrics": {"acc": "high"}}, "body.metrics.acc"),
        ("POST", f"/projects/{P}/versions", {**base, "parent_version": 0}, "body.parent_version"),
        (
            "POST",
            f"/projects/{P}/versions",
            {**base, "hyperparameters": {"lr": {"nested": 1}}},
            "body.hyperparameters.lr",
        ),
        ("POST", f"/projects/{P}/versions", {**base, "tags": {f"k{i}": "v" for i in range(51)}}, "body.tags"),
        ("POST", f"/projects/{P}/versions", {**base, "artifact_sha256": "xyz"}, "body.artifact_sha256"),
        ("POST", f"/projects/{P}/versions", {**base, "parent_version": 99}, "parent_version"),
        ("POST", f"/projects/{P}/versions", {**base, "dataset_id": "ds-" + "f" * 20}, "dataset_id"),
        ("POST", "/projects", {"name": "x"}, "body.name"),
        ("POST", "/projects", {"name": "beer", "training": {"instance_count": 0}}, "body.training.instance_count"),
        ("POST", "/projects", {"name": "beer", "policy": {"direction": "up"}}, "body.policy.direction"),
        ("PATCH", f"/projects/{P}", {}, "body"),
        ("PATCH", f"/projects/{P}", {"description": None}, "body"),
        ("PUT", f"/projects/{P}/members", {"principal": "bob", "role": "viewer"}, "body.principal"),
        ("PUT", f"/projects/{P}/members", {"principal": ALICE.principal, "role": "owner"}, "body.role"),
        ("POST", f"/projects/{P}/versions/1/approve", {"reason": ""}, "body.reason"),
        ("POST", f"/projects/{P}/versions/1/transition", {"status": "SHIPPED", "reason": "x"}, "body.status"),
        ("POST", f"/projects/{P}/versions/1/promote", {"reason": "x", "expected_current": -1}, "body.expected_current"),
        ("PUT", f"/projects/{P}/aliases/staging", {"version": "two"}, "body.version"),
        ("POST", f"/projects/{P}/runs", {"base_version": 99}, "base_version"),
        ("POST", f"/projects/{P}/runs", {"overrides": {"dataset_id": "ds-" + "e" * 20}}, "overrides.dataset_id"),
        ("PATCH", f"/projects/{P}/versions/1", {"set_tags": {"a": "1"}, "remove_tags": ["a"]}, "body"),
    ]
    for method, path, body, field in cases:
        assert_bad_request(world.call(method, path, body), field, f"{method} {path} {body}")
    assert world.snapshot() == before


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=12,
)
PATH_VALUE = st.one_of(
    st.sampled_from(["wine", "1", "2", "0", "staging", "production", "team", "nope", "999"]),
    st.text(alphabet=st.characters(blacklist_characters="/?#%", blacklist_categories=("Cs",)), min_size=1, max_size=20),
)


def test_random_requests_never_5xx_and_failures_write_nothing(world: Api) -> None:
    @settings(
        max_examples=120,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        database=None,
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        method, path, op = data.draw(st.sampled_from(OPERATIONS))
        values = {name: data.draw(PATH_VALUE) for name in re.findall(r"{(\w+)}", path)}
        url = concrete(path, {k: v for k, v in values.items() if v})
        body: Any = None
        if "requestBody" in op:
            body = data.draw(st.one_of(JSON, st.just("{"), st.text(max_size=20)))
            body = body if isinstance(body, str) else json.dumps(body)
        names = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"] + ["zzz"]
        query = data.draw(st.dictionaries(st.sampled_from(names), st.text(max_size=15), max_size=3)) or None
        before = world.snapshot()
        r = world.call(method, url, body, query=query)
        assert r.status < 500, (method, url, body, query, r.body)
        if r.status >= 400:
            assert isinstance(r.body, dict) and r.error and r.body.get("message"), r.body
            assert world.snapshot() == before, (method, url, body, query, r.body)

    run()
