"""The AWS endpoint of the local cloud: one HTTP port that the AWS CLI and boto3 reach with
--endpoint-url / AWS_ENDPOINT_URL.

Requests go to moto's WSGI application, except DynamoDB's when a DynamoDB Local endpoint is
configured: those are forwarded to it unchanged, so the registry lives in a real, persistent
DynamoDB while every other service (Step Functions' direct DynamoDB integrations included, which
call back into this port) sees one endpoint."""

from __future__ import annotations

import http.client
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

log = logging.getLogger("localcloud.server")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("%s %s %s", self.command, self.path, code)


def moto_app() -> WSGIApp:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


class ForwardingApp:
    """Routes DynamoDB requests to DynamoDB Local (when set) and the rest to moto."""

    def __init__(self, moto: WSGIApp, dynamodb_endpoint: str | None = None) -> None:
        self._moto = moto
        self._dynamodb = urlsplit(dynamodb_endpoint) if dynamodb_endpoint else None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if self._dynamodb is not None and target.startswith(("DynamoDB_", "DynamoDBStreams_")):
            return self._forward(environ, start_response)
        return self._moto(environ, start_response)

    def _forward(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        assert self._dynamodb is not None
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").title(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        headers["Host"] = self._dynamodb.netloc
        connection = http.client.HTTPConnection(self._dynamodb.hostname or "127.0.0.1", self._dynamodb.port, timeout=60)
        try:
            connection.request(environ["REQUEST_METHOD"], environ.get("PATH_INFO") or "/", body, headers)
            response = connection.getresponse()
            data = response.read()
            out_headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            start_response(f"{response.status} {response.reason}", out_headers)
            return [data]
        finally:
            connection.close()


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
