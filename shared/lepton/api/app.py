"""The REST API: one APIGatewayRestResolver with validation, a router per resource, one
exception-handler module, and GET /openapi.json generated from the routes.

The caller is `requestContext.identity.userArn` (API Gateway AWS_IAM auth); in-app roles per
project (viewer < trainer < approver < admin) are enforced by the registry service.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from lepton import __version__
from lepton.api import errors
from lepton.api.routes import aliases, audit, datasets, projects, runs, versions
from lepton.api.routes.common import ERROR_MODEL, ERRORS

app = APIGatewayRestResolver(enable_validation=True)

for module in (projects, versions, aliases, datasets, runs, audit):
    app.include_router(module.router)

errors.register(app)


def reject_unknown_query_parameters(resolver: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """A query parameter the route does not declare is a 400 naming it (request validation
    errors name it too, see lepton.api.errors)."""
    unknown = errors.unknown_query_parameters(resolver)
    if unknown:
        return errors.bad_request(unknown)
    return next_middleware(resolver)


app.use(middlewares=[reject_unknown_query_parameters])

SECURITY_SCHEMES = {
    "sigv4": {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "AWS Signature Version 4 (API Gateway AWS_IAM authorisation)",
        "x-amazon-apigateway-authtype": "awsSigv4",
    }
}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route, generated from the code. Request validation
    errors are answered 400 (see lepton.api.errors), so powertools' generated 422 responses are
    rewritten to 400 with the ErrorBody schema."""
    doc: dict[str, Any] = json.loads(
        app.get_openapi_json_schema(
            title="Lepton Lifecycle registry API",
            version=__version__,
            description="Projects, datasets, model versions, aliases, runs and the audit log.",
        )
    )
    doc.setdefault("components", {}).setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    doc["security"] = [{"sigv4": []}]
    schemas = doc["components"].setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["ErrorBody"] = ERROR_MODEL.model_json_schema(ref_template="#/components/schemas/{model}")
    error_content = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for path in doc.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status, description in ERRORS.items():
                responses.setdefault(status, {"description": description, "content": error_content})
    return doc


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[Any]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=openapi_document())
