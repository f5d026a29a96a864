"""GET /openapi.json is generated from the code and describes every route."""

from __future__ import annotations

import re

from api_testkit import Api

from lepton.api.app import app, openapi_document

METHODS = {"get", "post", "put", "patch", "delete"}


def _routes_in_code() -> set[tuple[str, str]]:
    routes = set()
    for route in [*app._static_routes, *app._dynamic_routes]:
        if not route.include_in_schema:
            continue
        path = re.sub(r"<(\w+)>", r"{\1}", route.openapi_path)
        routes.add((route.method.lower(), path))
    return routes


def test_document_is_served_and_lists_every_route(api: Api) -> None:
    r = api.call("GET", "/openapi.json")
    assert r.status == 200 and r.body["openapi"].startswith("3.1")
    documented = {(m, p) for p, ops in r.body["paths"].items() for m in ops if m in METHODS}
    assert documented == _routes_in_code()
    assert len(documented) >= 30
    assert r.body == openapi_document()


def test_every_operation_documents_its_inputs_and_errors() -> None:
    doc = openapi_document()
    schemas = doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            responses = op["responses"]
            assert "422" not in responses, (method, path)
            for status in ("400", "403", "404", "409"):
                assert responses[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
            assert any(code.startswith("2") for code in responses), (method, path)
            names = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            assert names == set(re.findall(r"{(\w+)}", path)), (method, path)
            if method in ("post", "put", "patch") and path not in (
                "/projects/{project}/members",
                "/projects/{project}/runs/{run_id}/start",
            ):
                assert "requestBody" in op or method == "delete", (method, path)
    assert {"ModelVersion", "Alias", "ErrorBody", "RegisterVersion"} <= set(schemas)
    # the routes that start or stop a lifecycle execution document the 503 of a call Step Functions refused
    starting = {
        (path, method) for path, ops in doc["paths"].items() for method, op in ops.items() if "503" in op["responses"]
    }
    assert starting == {
        ("/projects/{project}/runs", "post"),
        ("/projects/{project}/runs/{run_id}/start", "post"),
        ("/projects/{project}/runs/{run_id}/stop", "post"),
        ("/projects/{project}/versions/{number}/branches", "post"),
    }
    stop = doc["paths"]["/projects/{project}/runs/{run_id}/stop"]["post"]["responses"]
    assert stop["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/Run")
    runs = doc["paths"]["/projects/{project}/runs"]["post"]["responses"]
    assert runs["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/RunStarted")
    assert runs["503"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")


def test_every_documented_operation_is_routed(api: Api) -> None:
    """Each operation in the document reaches a handler (never 'route_not_found') with
    placeholder path values, and nothing answers 5xx."""
    doc = openapi_document()
    samples = {"project": "wine", "number": "1", "other": "2", "alias": "staging", "key": "team"}
    samples |= {"dataset_id": "ds-" + "0" * 20, "run_id": "run-00000000"}
    for path, ops in doc["paths"].items():
        concrete = re.sub(r"{(\w+)}", lambda m: samples[m.group(1)], path)
        for method in ops:
            r = api.call(method.upper(), concrete, {} if method in ("post", "put", "patch") else None)
            assert r.error != "route_not_found", (method, path)
            assert r.status < 500, (method, path, r.body)
