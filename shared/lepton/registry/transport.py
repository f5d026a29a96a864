"""The registry's HTTP transport: botocore's signed requests on one kept-alive connection per thread.

botocore sends through urllib3: a connection pool, urllib3's request and response objects on top
of http.client's, the request head and body written to the socket separately, and the response
head handed to the `email` package's parser. Per DynamoDB call that costs about 0.5-0.7 ms of CPU
here, a fifth of the SDK's whole per-call cost and more than DynamoDB Local needs to answer a
GetItem (measured: docs/registry.md, "HTTP transport"). The registry makes one or two calls per
operation, so that is most of what it spends on top of the store.

`KeepAliveTransport` takes the place of the registry client's HTTP session (botocore's
`URLLib3Session`, behind `client._endpoint.http_session`): botocore still serialises, signs, runs
every `before-send` handler (moto's in-process mock answers there, and then nothing is sent),
parses, checks the CRC32 and retries exactly as before. The transport only moves the bytes: head
and body in one `sendall` on a persistent connection of the calling thread, and the answer read
as RFC 9112 frames it (`_Connection`). A failure is raised as the botocore exception urllib3's
would have become (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError,
ConnectionClosedError, SSLError), so the retry policy sees the same thing, and the connection is
dropped.

What it cannot send exactly as botocore would goes to botocore's own session, which it keeps and
asks: a URL that session would send through a proxy, a body that is not bytes. A client with a
client certificate or with TLS verification turned off keeps botocore's session altogether. HTTPS
verifies the server against the CA bundle botocore's session resolved (AWS_CA_BUNDLE or the
`ca_bundle` setting, REQUESTS_CA_BUNDLE, else botocore's default).
"""

from __future__ import annotations

import http.client
import os
import re
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

_MAX_LINE = 65536  # the limits http.client applies to a response's lines and headers
_MAX_HEADERS = 100
_NO_BODY = frozenset((204, 304))
_DIGITS = re.compile(r"[ \t]*[0-9]+[ \t]*")
_HEX = re.compile(rb"[0-9A-Fa-f]+")


class _Connection:
    """One HTTP/1.1 connection: a socket (TLS-wrapped for https) and a buffered reader on it.

    It writes a request's head and body in one `sendall` (http.client and urllib3 write them
    separately, which wakes the server twice) and reads the response with the reader's C
    `readline`/`read`. http.client hands the header block to the `email` package's parser, which
    costs more CPU here than the rest of the response (measured: 77 us against 4 us per
    DynamoDB answer). The framing is RFC 9112's: 1xx answers skipped, no body for HEAD, 204 and
    304, chunked or Content-Length bodies, else the body runs to the end of the connection.
    Failures are raised as http.client's exceptions or OSError, for `_failure` to map."""

    def __init__(self, sock: socket.socket, host_header: str) -> None:
        self.sock = sock
        self.host_header = host_header
        self.reader = sock.makefile("rb")
        self.will_close = False

    def request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        lines = [f"{method} {path} HTTP/1.1"]
        names = set()
        for name, value in headers.items():
            if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
                raise ValueError(f"invalid header {name!r}")
            lines.append(f"{name}: {value}")
            names.add(name.lower())
        if "host" not in names:
            lines.append(f"Host: {self.host_header}")
        if "content-length" not in names and (body or method in ("POST", "PUT", "PATCH")):
            lines.append(f"Content-Length: {len(body)}")
        lines += ("", "")
        self.sock.sendall("\r\n".join(lines).encode("latin-1") + body)

    def response(self, method: str) -> tuple[int, dict[str, str], bytes]:
        while True:
            version, status = self._status_line()
            headers = self._headers()
            if not 100 <= status < 200 or status == 101:
                break
        names = {name.lower(): value for name, value in headers.items()}  # one key per name (_headers)
        token = names.get("connection", "").lower()
        self.will_close = "close" in token or (version == "HTTP/1.0" and "keep-alive" not in token)
        if method == "HEAD" or status in _NO_BODY or 100 <= status < 200:
            return status, headers, b""
        if "chunked" in names.get("transfer-encoding", "").lower():
            return status, headers, self._chunked()
        length = names.get("content-length")
        if length is not None:
            if not _DIGITS.fullmatch(length):
                raise http.client.HTTPException(f"invalid Content-Length {length!r}")
            return status, headers, self._exactly(int(length))
        self.will_close = True
        return status, headers, self.reader.read()

    def _line(self) -> bytes:
        line = self.reader.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE:
            raise http.client.LineTooLong("header line")
        return line

    def _status_line(self) -> tuple[str, int]:
        line = self._line()
        if not line:
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        version, _, rest = line.decode("latin-1").partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise http.client.BadStatusLine(line.decode("latin-1"))
        return version, int(code)

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        spelt: dict[str, str] = {}  # lower case -> the spelling the name first came in
        while True:
            line = self._line()
            if line in (b"\r\n", b"\n"):
                return headers
            if not line:
                raise http.client.IncompleteRead(b"", None)
            if len(headers) >= _MAX_HEADERS:
                raise http.client.HTTPException(f"got more than {_MAX_HEADERS} headers")
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise http.client.HTTPException(f"malformed header line {line!r}")
            name, value = name.strip(), value.strip()
            # a repeated header (names are case-insensitive) is one, its values joined by commas
            # (RFC 9110, 5.3), as urllib3 does
            first = spelt.setdefault(name.lower(), name)
            headers[first] = f"{headers[first]}, {value}" if first in headers else value

    def _exactly(self, n: int) -> bytes:
        data = self.reader.read(n)
        if len(data) < n:
            raise http.client.IncompleteRead(data, n - len(data))
        return data

    def _chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = self._line().split(b";", 1)[0].strip()
            if not _HEX.fullmatch(size):
                raise http.client.IncompleteRead(b"".join(chunks))
            n = int(size, 16)
            if n == 0:
                break
            chunks.append(self._exactly(n))
            if self._line() not in (b"\r\n", b"\n"):
                raise http.client.IncompleteRead(b"".join(chunks))
        while self._line() not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return b"".join(chunks)

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class BytesBody:
    """The response body as botocore reads it from `AWSResponse.raw`."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


class _Slot(threading.local):
    connection: _Connection | None = None
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
            connection.request(request.method, path, headers, body)
            status, answer_headers, data = connection.response(request.method)
        except Exception as exc:
            self._drop()
            raise self._failure(exc, request.url) from exc
        except BaseException:
            self._drop()
            raise
        if connection.will_close:
            self._drop()
        # AWSResponse copies any mapping into botocore's case-insensitive HeadersDict (the stubs
        # name HTTPHeaders, which is what urllib3's responses carry)
        return AWSResponse(request.url, status, cast(HTTPHeaders, answer_headers), BytesBody(data))

    # ------------------------------------------------------------------------------ plumbing

    def _connection(self, origin: tuple[str, str, int], url: str) -> _Connection:
        slot = self._slot
        connection = slot.connection
        # another origin, a forked child, or an idle connection the server has closed (readable
        # before a request means EOF; urllib3 checks the same way): a new one
        if connection is not None and (
            slot.origin != origin or slot.pid != os.getpid() or wait_for_read(connection.sock, timeout=0.0)
        ):
            self._drop()
            connection = None
        if connection is None:
            connection = self._connect(origin, url)
            slot.connection, slot.origin, slot.pid = connection, origin, os.getpid()
        return connection

    def _connect(self, origin: tuple[str, str, int], url: str) -> _Connection:
        scheme, host, port = origin
        try:
            sock = socket.create_connection((host, port), timeout=self.connect_timeout)
        except Exception as exc:
            raise self._failure(exc, url, connecting=True) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tcp_keepalive:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            if scheme == "https":
                sock = self._context().wrap_socket(sock, server_hostname=host)
        except Exception as exc:
            sock.close()
            raise self._failure(exc, url, connecting=True) from exc
        sock.settimeout(self.read_timeout)
        # the Host that botocore signs when the request has none: the URL's host (lower case, an
        # IPv6 address in brackets), and its port unless it is the scheme's default
        name = f"[{host}]" if ":" in host else host
        return _Connection(sock, name if port == (443 if scheme == "https" else 80) else f"{name}:{port}")

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
