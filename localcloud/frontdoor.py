"""The API Gateway front door: HTTP requests in, REST API Lambda proxy events out.

moto stores REST APIs but never executes their integrations. This server does what API Gateway
does for a deployed REST API with Lambda proxy integrations:
  * matches the request to a resource and method of the API (literal segments before {param},
    {proxy+} last); no match answers 403 "Missing Authentication Token", as API Gateway does;
  * enforces the method's authorizationType: AWS_IAM requires a valid SigV4 signature from a
    principal the local IAM knows (an IAM user's access key or an assumed role's session), and an
    identity policy allowing execute-api:Invoke on the method's ARN;
  * builds the proxy event (version 1.0) with requestContext.identity (userArn, accessKey,
    caller, accountId, sourceIp, userAgent) and invokes the integration's function through the
    Lambda runtime;
  * turns the function's answer into the HTTP response; a failed or malformed answer is a 502.

URLs: http://127.0.0.1:<port>/<stage>/<path> for the default API (the deployed stack's), and
http://127.0.0.1:<port>/restapis/<api-id>/<stage>/_user_request_/<path> for any API."""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

log = logging.getLogger("localcloud.frontdoor")

MISSING_TOKEN = {"message": "Missing Authentication Token"}
INVALID_TOKEN = {"message": "The security token included in the request is invalid."}
BAD_SIGNATURE = {
    "message": "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
}
INTERNAL = {"message": "Internal server error"}
MAX_SKEW_SECONDS = 15 * 60
USER_REQUEST = re.compile(r"^/restapis/([^/]+)/([^/]+)/_user_request_(/.*)?$")


class Reject(Exception):
    def __init__(self, status: int, body: dict[str, Any], error_type: str) -> None:
        super().__init__(body.get("message") or body.get("Message"))
        self.status = status
        self.body = body
        self.error_type = error_type


@dataclass
class Match:
    resource: Any
    method: Any
    path_parameters: dict[str, str]


@dataclass
class Caller:
    arn: str
    access_key: str
    account: str
    caller: str
    user: str


def _template_score(path: str) -> tuple[int, int, int]:
    parts = [p for p in path.split("/") if p]
    greedy = int(any(p.endswith("+}") for p in parts))
    params = sum(p.startswith("{") for p in parts)
    return (greedy, params, -len(parts))


def match_resource(api: Any, path: str, method: str) -> Match | None:
    segments = [s for s in path.split("/") if s]
    for resource in sorted(api.resources.values(), key=lambda r: _template_score(r.get_path())):
        template = [t for t in resource.get_path().split("/") if t]
        params: dict[str, str] = {}
        ok = True
        for index, part in enumerate(template):
            if part.startswith("{") and part.endswith("+}"):
                if index >= len(segments):
                    ok = False
                    break
                params[part[1:-2]] = "/".join(segments[index:])
                segments_used = len(segments)
                break
            if index >= len(segments):
                ok = False
                break
            if part.startswith("{") and part.endswith("}"):
                params[part[1:-1]] = segments[index]
            elif part != segments[index]:
                ok = False
                break
        else:
            segments_used = len(template)
        if not ok or segments_used != len(segments):
            continue
        methods = resource.resource_methods
        chosen = methods.get(method) or methods.get("ANY")
        if chosen is not None:
            return Match(resource, chosen, params)
    return None


class FrontDoor:
    def __init__(self, region: str, account: str, invoke: Callable[[str, bytes], tuple[bytes, str | None]]) -> None:
        self.region = region
        self.account = account
        self._invoke = invoke
        self.default_api: str | None = None

    # -- WSGI -------------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request_id = str(uuid.uuid4())
        try:
            status, headers, body = self.handle(environ, request_id)
        except Reject as rejection:
            status, body = rejection.status, json.dumps(rejection.body).encode()
            headers = {"Content-Type": "application/json", "x-amzn-ErrorType": rejection.error_type}
        except Exception:  # the front door itself must answer, like API Gateway, never hang up
            log.exception("front door failure")
            status, body, headers = 500, json.dumps(INTERNAL).encode(), {"Content-Type": "application/json"}
        headers = {**headers, "x-amzn-RequestId": request_id, "Content-Length": str(len(body))}
        start_response(f"{status} {_reason(status)}", list(headers.items()))
        return [body]

    def handle(self, environ: dict[str, Any], request_id: str) -> tuple[int, dict[str, str], bytes]:
        from moto.apigateway.models import apigateway_backends

        path = environ.get("PATH_INFO") or "/"
        explicit = USER_REQUEST.match(path)
        if explicit:
            api_id, stage_name, path = explicit.group(1), explicit.group(2), explicit.group(3) or "/"
        else:
            parts = path.split("/", 2)
            if self.default_api is None or len(parts) < 2 or not parts[1]:
                raise Reject(403, MISSING_TOKEN, "MissingAuthenticationTokenException")
            api_id, stage_name, path = self.default_api, parts[1], "/" + (parts[2] if len(parts) > 2 else "")
        backend = apigateway_backends[self.account][self.region]
        api = backend.apis.get(api_id)
        if api is None or stage_name not in api.stages:
            raise Reject(403, MISSING_TOKEN, "MissingAuthenticationTokenException")
        method_name = environ["REQUEST_METHOD"].upper()
        match = match_resource(api, path, method_name)
        if match is None:
            raise Reject(403, MISSING_TOKEN, "MissingAuthenticationTokenException")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        if environ.get("CONTENT_LENGTH"):
            headers["Content-Length"] = environ["CONTENT_LENGTH"]
        query = environ.get("QUERY_STRING", "")
        # IAM evaluates execute-api:Invoke against the requested path, not the resource template
        method_arn = f"arn:aws:execute-api:{self.region}:{self.account}:{api_id}/{stage_name}/{method_name}{path}"
        caller = None
        if match.method.authorization_type == "AWS_IAM":
            caller = self._authenticate(environ, headers, body, query, method_arn)
        elif match.method.authorization_type not in (None, "NONE"):
            raise Reject(500, INTERNAL, "InternalServerErrorException")
        integration = match.method.method_integration
        if integration is None or integration.integration_type.upper() != "AWS_PROXY":
            raise Reject(500, INTERNAL, "InternalServerErrorException")
        function_arn = integration.uri.split("/functions/", 1)[1].rsplit("/invocations", 1)[0]
        event = self._event(environ, api, api_id, stage_name, match, headers, body, query, caller, request_id, path)
        payload, error = self._invoke(function_arn, json.dumps(event).encode())
        return self._response(payload, error)

    # -- SigV4 ------------------------------------------------------------------------------------

    def _authenticate(
        self, environ: dict[str, Any], headers: dict[str, str], body: bytes, query: str, method_arn: str
    ) -> Caller:
        from moto.iam.access_control import CreateAccessKeyFailure, IAMPolicy, PermissionResult, create_access_key

        authorization = headers.get("Authorization", "")
        if not authorization.startswith("AWS4-HMAC-SHA256 "):
            raise Reject(403, MISSING_TOKEN, "MissingAuthenticationTokenException")
        fields = dict(
            part.strip().split("=", 1) for part in authorization[len("AWS4-HMAC-SHA256 ") :].split(",") if "=" in part
        )
        try:
            access_key, _date, region, service, _ = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
            signature = fields["Signature"]
        except (KeyError, ValueError):
            raise Reject(
                403,
                {"message": "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters."},
                "IncompleteSignatureException",
            ) from None
        amz_date = headers.get("X-Amz-Date", "")
        try:
            signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise Reject(
                403,
                {"message": "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."},
                "IncompleteSignatureException",
            ) from None
        if abs(time.time() - signed_at.timestamp()) > MAX_SKEW_SECONDS:
            raise Reject(403, {"message": "Signature expired: " + amz_date}, "InvalidSignatureException")
        sigv4_headers = {k: v for k, v in headers.items() if k.lower() in signed}
        # boto3 signs X-Amz-Security-Token under that exact casing; moto looks it up that way
        lookup_headers = dict(headers)
        if "X-Amz-Security-Token" in headers:
            lookup_headers["X-Amz-Security-Token"] = headers["X-Amz-Security-Token"]
        try:
            key = create_access_key(self.account, "aws", access_key, lookup_headers)
        except CreateAccessKeyFailure:
            raise Reject(403, INVALID_TOKEN, "UnrecognizedClientException") from None
        host = headers.get("Host", "")
        url = f"http://{host}{quote(environ.get('PATH_INFO') or '/', safe='/~')}" + (f"?{query}" if query else "")
        request = AWSRequest(method=environ["REQUEST_METHOD"], url=url, data=body, headers=sigv4_headers)
        request.context["timestamp"] = amz_date
        auth = SigV4Auth(key.create_credentials(), service, region)
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        if expected != signature or service != "execute-api":
            raise Reject(403, BAD_SIGNATURE, "InvalidSignatureException")
        permitted = False
        for policy in key.collect_policies():
            result = IAMPolicy(policy).is_action_permitted("execute-api:Invoke", method_arn)
            if result == PermissionResult.DENIED:
                permitted = False
                break
            permitted = permitted or result == PermissionResult.PERMITTED
        if not permitted:
            raise Reject(
                403,
                {
                    "Message": f"User: {key.arn} is not authorized to perform: execute-api:Invoke on resource: "
                    f"{method_arn}"
                },
                "AccessDeniedException",
            )
        name = key.arn.rsplit("/", 1)[-1]
        return Caller(arn=key.arn, access_key=access_key, account=self.account, caller=name, user=name)

    # -- proxy event and response -----------------------------------------------------------------

    def _event(
        self,
        environ: dict[str, Any],
        api: Any,
        api_id: str,
        stage: str,
        match: Match,
        headers: dict[str, str],
        body: bytes,
        query: str,
        caller: Caller | None,
        request_id: str,
        path: str,
    ) -> dict[str, Any]:
        multi_headers: dict[str, list[str]] = {k: [v] for k, v in headers.items()}
        pairs = parse_qsl(query, keep_blank_values=True)
        multi_query: dict[str, list[str]] = {}
        for key, value in pairs:
            multi_query.setdefault(key, []).append(value)
        binary = any(
            headers.get("Content-Type", "").startswith(t) for t in (getattr(api, "binaryMediaTypes", None) or [])
        )
        try:
            text = body.decode("utf-8")
            encoded = binary
        except UnicodeDecodeError:
            text, encoded = "", True
        if encoded:
            text = base64.b64encode(body).decode()
        now = datetime.now(UTC)
        identity = {
            "cognitoIdentityPoolId": None,
            "accountId": caller.account if caller else None,
            "cognitoIdentityId": None,
            "caller": caller.caller if caller else None,
            "sourceIp": environ.get("REMOTE_ADDR", "127.0.0.1"),
            "principalOrgId": None,
            "accessKey": caller.access_key if caller else None,
            "cognitoAuthenticationType": None,
            "cognitoAuthenticationProvider": None,
            "userArn": caller.arn if caller else None,
            "userAgent": headers.get("User-Agent", ""),
            "user": caller.user if caller else None,
        }
        return {
            "resource": match.resource.get_path(),
            "path": path,
            "httpMethod": environ["REQUEST_METHOD"].upper(),
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": dict(pairs) or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": match.path_parameters or None,
            "stageVariables": api.stages[stage].variables or None,
            "requestContext": {
                "resourceId": match.resource.id,
                "resourcePath": match.resource.get_path(),
                "httpMethod": environ["REQUEST_METHOD"].upper(),
                "extendedRequestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{stage}{path}",
                "accountId": self.account,
                "protocol": environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "stage": stage,
                "domainPrefix": api_id,
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "requestId": request_id,
                "identity": identity,
                "domainName": headers.get("Host", f"{api_id}.execute-api.{self.region}.amazonaws.com"),
                "apiId": api_id,
            },
            "body": text if body else None,
            "isBase64Encoded": encoded,
        }

    @staticmethod
    def _response(payload: bytes, error: str | None) -> tuple[int, dict[str, str], bytes]:
        if error:
            raise Reject(502, INTERNAL, "InternalServerErrorException")
        try:
            answer = json.loads(payload)
            status = int(answer.get("statusCode", 200))
        except (ValueError, TypeError, AttributeError):
            raise Reject(502, INTERNAL, "InternalServerErrorException") from None
        headers = {k: str(v) for k, v in (answer.get("headers") or {}).items()}
        for key, values in (answer.get("multiValueHeaders") or {}).items():
            headers[key] = ",".join(str(v) for v in values)
        body = answer.get("body") or ""
        data = base64.b64decode(body) if answer.get("isBase64Encoded") else str(body).encode()
        return status, headers, data


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
