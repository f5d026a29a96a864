"""The one place that maps exceptions to HTTP answers (STYLE.md pattern 2).

- lepton.errors types carry their status: ValidationFailed 400, Forbidden 403, *NotFound 404,
  Conflict (IllegalTransition, ConcurrentModification, AlreadyExists, ...) 409, IntegrityError 422.
- Request validation (malformed JSON, missing, extra, wrong-typed or out-of-range fields, bad path
  ids, bad query values, unknown query parameters) is 400 too, not powertools' default 422, so that
  every bad input has one status; the body names each field as `<where>.<name>`.
- Anything else is a bug: logged with its traceback and answered 500 with a JSON body.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from lepton.errors import LeptonError, ValidationFailed
from lepton.observability import logger, metrics

BAD_REQUEST = HTTPStatus.BAD_REQUEST


def json_response(status: int, body: dict[str, Any]) -> Response[dict[str, Any]]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def describe(errors: list[Any]) -> list[dict[str, str]]:
    fields = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        kind = str(error.get("type", "invalid"))
        if kind == "json_invalid":
            fields.append({"field": "body", "problem": "the body is not valid JSON", "type": kind})
            continue
        problem = str(error.get("msg") or kind)
        if kind == "extra_forbidden":
            problem = "unknown field"
        fields.append({"field": ".".join(loc) or "request", "problem": problem, "type": kind})
    return fields


def bad_request(fields: list[dict[str, str]]) -> Response[dict[str, Any]]:
    names = ", ".join(f["field"] for f in fields)
    return json_response(
        BAD_REQUEST,
        {"error": "validation_failed", "message": f"invalid request: {names}", "details": {"fields": fields}},
    )


def unknown_query_parameters(app: APIGatewayRestResolver) -> list[dict[str, str]]:
    """Query parameters the matched route does not declare (a silently ignored typo would
    return the wrong listing)."""
    route = app.context.get("_route")
    given = set(app.current_event.query_string_parameters or {})
    if route is None or not given or route.dependant is None:
        return []
    declared = {p.alias for p in route.dependant.query_params}
    problem = "unknown query parameter"
    return [{"field": f"query.{n}", "problem": problem, "type": "extra_forbidden"} for n in sorted(given - declared)]


def register(app: APIGatewayRestResolver) -> None:
    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response[dict[str, Any]]:
        return bad_request(describe(list(exc.errors())) + unknown_query_parameters(app))

    @app.exception_handler(LeptonError)
    def _domain(exc: LeptonError) -> Response[dict[str, Any]]:
        body = exc.to_dict()
        field = exc.details.get("field")
        if isinstance(exc, ValidationFailed) and isinstance(field, str):
            # the same shape as request validation errors: details.fields names each bad field
            body["details"] = {**exc.details, "fields": [{"field": field, "problem": exc.message, "type": exc.code}]}
        if exc.status >= 500:
            logger.exception("server-side error", extra={"error": exc.code})
        return json_response(exc.status, body)

    @app.exception_handler(NotFoundError)
    def _no_route(exc: NotFoundError) -> Response[dict[str, Any]]:
        event = app.current_event
        message = f"no route {event.http_method} {event.path}"
        return json_response(HTTPStatus.NOT_FOUND, {"error": "route_not_found", "message": message})

    @app.exception_handler(Exception)
    def _bug(exc: Exception) -> Response[dict[str, Any]]:
        logger.exception("unhandled error")
        metrics.add_metric(name="UnhandledErrors", unit="Count", value=1)
        return json_response(
            HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal_error", "message": "internal error (logged)"}
        )
