"""The registry's HTTP transport: botocore's signed requests on one kept-alive connection per thread.

botocore sends through urllib3: a connection pool, urllib3's request and response objects on top
of http.client's, and the request head and body written to the socket separately. Per DynamoDB
call that costs about 0.5-0.7 ms of CPU here, a fifth of the SDK's whole per-call cost and more
than DynamoDB Local needs to answer a GetItem (measured: docs/registry.md, "HTTP transport").
The registry makes one or two calls per operation, so that is most of what it spends on top of
the store.

`KeepAliveTransport` takes the place of the registry client's HTTP session (botocore's
`URLLib3Session`, behind `client._endpoint.http_session`): botocore still serialises, signs, runs
every `before-send` handler (moto's in-process mock answers there, and then nothing is sent),
parses, checks the CRC32 and retries exactly as before. The transport only moves the bytes: head
and body in one `sendall` on a persistent stdlib `http.client` connection of the calling thread.
A failure is raised as the botocore exception urllib3's would have become
(EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError, SSLError),
so the retry policy sees the same thing, and the connection is dropped.

What it cannot send exactly as botocore would goes to botocore's own session, which it keeps and
asks: a URL that session would send through a proxy, a body that is not bytes. A client with a
client certificate or with TLS verification turned off keeps botocore's session altogether. HTTPS
verifies the server against the CA bundle botocore's session resolved (AWS_CA_BUNDLE or the
`ca_bundle` setting, REQUESTS_CA_BUNDLE, else botocore's default).
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
)
from botocore.httpsession import URLLib3Session, get_cert_path
from urllib3.util.wait import wait_for_read


class _OneWrite:
    """http.client writes a request's head and its body with two `sendall`s, so the server
    wakes up twice (and may answer the first with a delayed ACK). A bytes body goes in the same
    write as the head, as botocore's own AWSConnection does."""

    _buffer: list[bytes]

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        if isinstance(message_body, bytes):
            self._buffer.extend((b"", b""))
            message = b"\r\n".join(self._buffer) + message_body
            del self._buffer[:]
            self.send(message)  # type: ignore[attr-defined]
            return
        super()._send_output(message_body, encode_chunked)  # type: ignore[misc]


class _HTTPConnection(_OneWrite, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_OneWrite, http.client.HTTPSConnection):
    pass


class BytesBody:
    """The response body as botocore reads it from `AWSResponse.raw`."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


class _Slot(threading.local):
    connection: http.client.HTTPConnection | None = None
    origin: tuple[str, str, int] | None = None
    pid: int = 0


class KeepAliveTransport:
    """An HTTP session for botocore's Endpoint (see the module's docstring); `install` puts one
    in a client."""

    def __init__(
        self,
        fallback: URLLib3Session,
        proxies: Any,
        *,
        connect_timeout: float | None,
        read_timeout: float | None,
        verify: str | Literal[True] = True,
        tcp_keepalive: bool = False,
    ) -> None:
        self.fallback = fallback  # botocore's own session, for what this one does not send
        self._proxies = proxies  # that session's ProxyConfiguration
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.tcp_keepalive = tcp_keepalive
        self._verify = verify
        self._tls: ssl.SSLContext | None = None
        self._slot = _Slot()
        self._count = 0
        self._count_lock = threading.Lock()

    @property
    def sent(self) -> int:
        """How many requests this transport has sent (botocore's own sent the others)."""
        return self._count

    @classmethod
    def install(cls, client: Any) -> KeepAliveTransport | None:
        """Give `client` this transport, with its timeouts and TCP keep-alive setting and the CA
        bundle its botocore session resolved; None (and botocore's session stays) for a client
        with a client certificate or with verification off, or a botocore whose endpoint no longer
        looks as expected."""
        config = client.meta.config
        endpoint: Any = getattr(client, "_endpoint", None)
        fallback = getattr(endpoint, "http_session", None)
        if not isinstance(fallback, URLLib3Session) or config.client_cert:
            return None
        verify = getattr(fallback, "_verify", None)  # True or a CA bundle path, as botocore resolved it
        proxies = getattr(fallback, "_proxy_config", None)  # which URLs botocore sends through a proxy
        if (verify is not True and not isinstance(verify, str)) or proxies is None:
            return None
        transport = cls(
            fallback,
            proxies,
            connect_timeout=config.connect_timeout,
            read_timeout=config.read_timeout,
            verify=verify,
            tcp_keepalive=bool(config.tcp_keepalive),
        )
        endpoint.http_session = transport
        return transport

    # ----------------------------------------------------------------- botocore's http_session

    def send(self, request: AWSPreparedRequest) -> AWSResponse:
        body = request.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif body is None:
            body = b""
        url = urlsplit(request.url)
        if (
            not isinstance(body, bytes)
            or url.scheme not in ("http", "https")
            or self._proxies.proxy_url_for(request.url)  # what botocore's session would send via a proxy
        ):
            return self.fallback.send(request)
        origin = (url.scheme, url.hostname or "", url.port or (443 if url.scheme == "https" else 80))
        path = url.path or "/"
        if url.query:
            path = f"{path}?{url.query}"
        headers = {k: v.decode("utf-8") if isinstance(v, bytes) else v for k, v in request.headers.items()}
        connection = self._connection(origin, request.url)
        try:
            connection.request(request.method, path, body, headers)
            response = connection.getresponse()
            data = response.read()
        except Exception as exc:
            self._drop()
            raise self._failure(exc, request.url) from exc
        except BaseException:
            self._drop()
            raise
        if response.will_close:
            self._drop()
        with self._count_lock:
            self._count += 1
        # an http.client HTTPMessage: the case-insensitive mapping botocore's HTTPHeaders extends
        answer_headers = cast(HTTPHeaders, response.headers)
        return AWSResponse(request.url, response.status, answer_headers, BytesBody(data))

    # ------------------------------------------------------------------------------ plumbing

    def _connection(self, origin: tuple[str, str, int], url: str) -> http.client.HTTPConnection:
        slot = self._slot
        connection = slot.connection
        if connection is not None:
            sock = connection.sock
            # another origin, a forked child, or an idle connection the server has closed
            # (readable before a request means EOF; urllib3 checks the same way): a new one
            if slot.origin != origin or slot.pid != os.getpid() or sock is None or wait_for_read(sock, timeout=0.0):
                self._drop()
                connection = None
        if connection is None:
            connection = self._connect(origin, url)
            slot.connection, slot.origin, slot.pid = connection, origin, os.getpid()
        return connection

    def _connect(self, origin: tuple[str, str, int], url: str) -> http.client.HTTPConnection:
        scheme, host, port = origin
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = _HTTPSConnection(host, port, timeout=self.connect_timeout, context=self._context())
        else:
            connection = _HTTPConnection(host, port, timeout=self.connect_timeout)
        try:
            connection.connect()
        except Exception as exc:
            connection.close()
            raise self._failure(exc, url, connecting=True) from exc
        sock = connection.sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tcp_keepalive:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        sock.settimeout(self.read_timeout)
        return connection

    def _context(self) -> ssl.SSLContext:
        if self._tls is None:
            # get_cert_path: the path given, or botocore's default bundle for True
            self._tls = ssl.create_default_context(cafile=get_cert_path(cast(bool, self._verify)))
        return self._tls

    def close(self) -> None:
        """Botocore closes its endpoint: this thread's connection and botocore's own session."""
        self._drop()
        self.fallback.close()

    def _drop(self) -> None:
        slot = self._slot
        if slot.connection is not None:
            slot.connection.close()
        slot.connection, slot.origin = None, None

    @staticmethod
    def _failure(exc: Exception, url: str, *, connecting: bool = False) -> Exception:
        """The botocore exception that botocore's own transport raises for `exc`."""
        if isinstance(exc, ssl.SSLError):
            return SSLError(endpoint_url=url, error=exc)
        if isinstance(exc, TimeoutError):
            if connecting:
                return ConnectTimeoutError(endpoint_url=url, error=exc)
            return ReadTimeoutError(endpoint_url=url, error=exc)
        if connecting and isinstance(exc, OSError):
            return EndpointConnectionError(endpoint_url=url, error=exc)
        if isinstance(exc, OSError | http.client.HTTPException):
            return ConnectionClosedError(endpoint_url=url, error=exc)
        return exc
