"""The AWS endpoint of the local cloud: one HTTP port that the AWS CLI and boto3 reach with
--endpoint-url / AWS_ENDPOINT_URL.

Requests go to moto's WSGI application, except DynamoDB's when a DynamoDB Local endpoint is
configured: those are forwarded to it unchanged, so the registry lives in a real, persistent
DynamoDB while every other service (Step Functions' direct DynamoDB integrations included, which
call back into this port) sees one endpoint."""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

log = logging.getLogger("localcloud.server")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
BACKUPS_TARGETS = ("DynamoDB_20120810.UpdateContinuousBackups", "DynamoDB_20120810.DescribeContinuousBackups")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s %s", self.command, self.path, code)


def moto_app() -> WSGIApp:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


class ForwardingApp:
    """Routes DynamoDB requests to DynamoDB Local (when set) and the rest to moto.

    DynamoDB Local has no point-in-time recovery (UpdateContinuousBackups is an unknown operation
    there), so this router answers UpdateContinuousBackups and DescribeContinuousBackups itself,
    with the setting kept per table for the server's lifetime, after asking DynamoDB Local whether
    the table exists (a missing table gets DynamoDB's TableNotFoundException)."""

    def __init__(self, moto: WSGIApp, dynamodb_endpoint: str | None = None) -> None:
        self._moto = moto
        self._dynamodb = urlsplit(dynamodb_endpoint) if dynamodb_endpoint else None
        self._pitr: dict[str, bool] = {}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if self._dynamodb is not None and target in BACKUPS_TARGETS:
            return self._continuous_backups(environ, start_response, target)
        if self._dynamodb is not None and target.startswith(("DynamoDB_", "DynamoDBStreams_")):
            return self._forward(environ, start_response)
        return self._moto(environ, start_response)

    @staticmethod
    def _request(environ: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").title(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        return body, headers

    def _send(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> tuple[str, list[Any], bytes]:
        assert self._dynamodb is not None
        headers["Host"] = self._dynamodb.netloc
        connection = http.client.HTTPConnection(self._dynamodb.hostname or "127.0.0.1", self._dynamodb.port, timeout=60)
        try:
            connection.request(method, path, body, headers)
            response = connection.getresponse()
            data = response.read()
            out_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            return f"{response.status} {response.reason}", out_headers, data
        finally:
            connection.close()

    def _forward(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body, headers = self._request(environ)
        status, out_headers, data = self._send(
            environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/", body, headers
        )
        start_response(status, out_headers)
        return [data]

    def _continuous_backups(
        self, environ: dict[str, Any], start_response: Callable[..., Any], target: str
    ) -> Iterable[bytes]:
        body, headers = self._request(environ)
        request = json.loads(body or b"{}")
        table = str(request.get("TableName", ""))
        # the signature is not checked by DynamoDB Local, so the rewritten request needs no re-signing
        headers["X-Amz-Target"] = "DynamoDB_20120810.DescribeTable"
        status, out_headers, data = self._send("POST", "/", json.dumps({"TableName": table}).encode(), headers)
        if not status.startswith("200"):
            start_response(status, out_headers)
            return [data]
        if target.endswith("UpdateContinuousBackups"):
            spec = request.get("PointInTimeRecoverySpecification", {})
            self._pitr[table] = bool(spec.get("PointInTimeRecoveryEnabled"))
        enabled = self._pitr.get(table, False)
        answer = {
            "ContinuousBackupsDescription": {
                "ContinuousBackupsStatus": "ENABLED",
                "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "ENABLED" if enabled else "DISABLED"},
            }
        }
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return [json.dumps(answer).encode()]


class ThreadedServer:
    """A threaded WSGI server on 127.0.0.1 (port 0 picks a free one)."""

    def __init__(self, app: WSGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server: BaseWSGIServer = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"wsgi-{self.port}", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadedServer:
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
