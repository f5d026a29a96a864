"""The registry client's HTTP transport (lepton.registry.transport) against real sockets: a small
HTTP/1.1 server that answers like DynamoDB and records what arrives, one with TLS, and the registry
on DynamoDB Local through it."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.auth import AUTH_TYPE_MAPS, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError, SSLError
from registry_testkit import ALICE, make_service, set_fake_aws_env

from lepton.registry import transport as transport_module
from lepton.registry.commands import NewProject
from lepton.registry.dynamo import bind, create_table
from lepton.registry.transport import KeepAliveTransport

TABLE = "lepton-registry-transport"
ITEM = {"Item": {"pk": {"S": "PROJECT#wine"}, "sk": {"S": "PROJECT"}, "body": {"S": "{}"}}}


def signature_matches(method: str, scheme: str, path: str, headers: Any, body: bytes) -> bool:
    """What AWS checks: the SigV4 signature in Authorization, recomputed from the request as it
    arrived (the headers it names, the Host the client sent, the body) with the caller's secret."""
    received = {name.lower(): value for name, value in headers.items()}
    fields = dict(part.strip().split("=", 1) for part in received["authorization"].split(" ", 1)[1].split(","))
    access_key, date, region, service, _ = fields["Credential"].split("/")
    signed = fields["SignedHeaders"].split(";")
    request = AWSRequest(
        method=method,
        url=f"{scheme}://{received['host']}{path}",
        headers={name: received[name] for name in signed},
        data=body,
    )
    request.context["timestamp"] = received["x-amz-date"]
    assert date == received["x-amz-date"][:8]
    auth = SigV4Auth(Credentials(access_key, os.environ["AWS_SECRET_ACCESS_KEY"]), service, region)
    canonical = auth.canonical_request(request)
    if auth.signed_headers(auth.headers_to_sign(request)) != fields["SignedHeaders"]:
        return False
    return bool(auth.signature(auth.string_to_sign(request, canonical), request) == fields["Signature"])


class FakeDynamo(BaseHTTPRequestHandler):
    """Answers every DynamoDB request with a GetItem-like 200 and records it; `server.mode` makes
    it drop the first request unanswered, close the connection after each answer, or answer late."""

    protocol_version = "HTTP/1.1"
    server: Recorder

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        signed = signature_matches(self.command, self.server.scheme, self.path, self.headers, body)
        with self.server.lock:
            self.server.requests.append(
                {
                    "peer": self.client_address,
                    "target": self.path,
                    "headers": dict(self.headers),
                    "body": body,
                    "signed": signed,
                }
            )
            n = len(self.server.requests)
        if self.server.mode == "drop-first" and n == 1:
            self.close_connection = True  # no answer at all
            return
        if self.server.mode == "slow":
            time.sleep(1.0)
        data = json.dumps(ITEM).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("x-amzn-RequestId", f"req-{n}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if self.server.mode == "close-after":
            self.close_connection = True  # an idle timeout, without announcing it

    def log_message(self, *_: Any) -> None:
        pass


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str = "ok") -> None:
        super().__init__(("127.0.0.1", 0), FakeDynamo)
        self.mode = mode
        self.lock = threading.Lock()
        self.requests: list[dict[str, Any]] = []
        self.closed = threading.Semaphore(0)  # released for every connection the server closed
        self.scheme = "http"

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        self.closed.release()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def peers(self) -> set[Any]:
        return {r["peer"] for r in self.requests}


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[Recorder] = []

    def start(mode: str = "ok", tls: ssl.SSLContext | None = None) -> Recorder:
        server = Recorder(mode)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
            server.scheme = "https"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def client_for(url: str, *, attempts: int = 4, read_timeout: float = 60, ca_bundle: str | None = None) -> Any:
    set_fake_aws_env()
    session = botocore.session.get_session()
    if ca_bundle is not None:
        session.set_config_variable("ca_bundle", ca_bundle)
    config = Config(read_timeout=read_timeout, retries={"total_max_attempts": attempts, "mode": "standard"})
    client = session.create_client("dynamodb", region_name="us-east-1", endpoint_url=url, config=config)
    assert KeepAliveTransport.install(client) is not None
    return client


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The targets of the requests the transport wrote itself (not through botocore's session)."""
    targets: list[str] = []
    write = transport_module._Connection.request

    def counting(self: Any, method: str, path: str, *args: Any) -> None:
        targets.append(path)
        write(self, method, path, *args)

    monkeypatch.setattr(transport_module._Connection, "request", counting)
    return targets


def transport_of(client: Any) -> KeepAliveTransport:
    transport = client._endpoint.http_session
    assert isinstance(transport, KeepAliveTransport)
    return transport


def get(client: Any) -> dict[str, Any]:
    return dict(client.get_item(TableName=TABLE, Key={"pk": {"S": "PROJECT#wine"}, "sk": {"S": "PROJECT"}}))


class CountingSocket:
    """A socket that counts its `sendall` calls."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.writes = 0

    def sendall(self, data: bytes, *args: Any) -> None:
        self.writes += 1
        self._sock.sendall(data, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def test_requests_share_one_connection_and_are_written_whole(serve: Any, sent: list[str]) -> None:
    server = serve()
    client = client_for(server.url)
    assert get(client)["Item"]["body"] == {"S": "{}"}
    connection = transport_of(client)._slot.connection
    assert connection is not None
    counting = connection.sock = CountingSocket(connection.sock)
    for _ in range(4):
        response = get(client)
        assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"].startswith("req-")
        assert response["ResponseMetadata"]["RetryAttempts"] == 0
    assert counting.writes == 4  # head and body in one write each
    assert len(server.requests) == 5 and len(server.peers()) == 1  # one kept-alive connection
    first = server.requests[-1]
    # the request botocore serialised and signed arrives as it was made
    assert first["target"] == "/"
    assert first["headers"]["X-Amz-Target"] == "DynamoDB_20120810.GetItem"
    assert first["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=")
    assert json.loads(first["body"])["TableName"] == TABLE
    assert len(sent) == 5


def test_a_connection_the_server_closed_while_idle_is_replaced_before_sending(serve: Any) -> None:
    server = serve("close-after")
    client = client_for(server.url, attempts=1)  # no retry could hide a failed send
    for _ in range(3):
        assert get(client)["ResponseMetadata"]["RetryAttempts"] == 0
        assert server.closed.acquire(timeout=10)  # idle now: the server has closed its end
    assert len(server.requests) == 3 and len(server.peers()) == 3


def test_a_request_the_server_dropped_is_retried_by_botocore(serve: Any) -> None:
    server = serve("drop-first")
    client = client_for(server.url)
    response = get(client)
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert len(server.requests) == 2 and len(server.peers()) == 2


def test_failures_are_botocore_exceptions(serve: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(EndpointConnectionError, match=f"127.0.0.1:{port}"):
        get(client_for(f"http://127.0.0.1:{port}", attempts=1))
    slow = serve("slow")
    client = client_for(slow.url, attempts=1, read_timeout=0.2)
    with pytest.raises(ReadTimeoutError):
        get(client)
    assert transport_of(client)._slot.connection is None  # the half-used connection is dropped


def test_each_thread_has_its_own_connection(serve: Any) -> None:
    server = serve()
    client = client_for(server.url)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                get(client)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(server.requests) == 20 and len(server.peers()) == 4


def test_a_proxy_in_the_environment_sends_through_botocore(
    serve: Any, sent: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = serve()
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "")
    client = client_for("http://dynamodb.example.internal:8000")
    assert get(client)["Item"]["body"] == {"S": "{}"}
    # urllib3 asked the proxy for the absolute URL; this transport sent nothing
    assert proxy.requests[0]["target"] == "http://dynamodb.example.internal:8000/"
    assert sent == []


def test_a_client_without_verification_or_with_a_client_certificate_keeps_botocores_session(tmp_path: Path) -> None:
    set_fake_aws_env()
    cert, key = self_signed(tmp_path, "client")
    session = botocore.session.get_session()
    kinds = {
        "verify off": session.create_client("dynamodb", region_name="us-east-1", verify=False),
        "client certificate": session.create_client(
            "dynamodb", region_name="us-east-1", config=Config(client_cert=(str(cert), str(key)))
        ),
    }
    for kind, client in kinds.items():
        assert KeepAliveTransport.install(client) is None, kind
        assert not isinstance(client._endpoint.http_session, KeepAliveTransport), kind


def self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_https_verifies_the_server_against_the_ca_bundle(serve: Any, sent: list[str], tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "server")
    other, _ = self_signed(tmp_path, "other")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server = serve(tls=tls)
    url = f"https://localhost:{server.server_address[1]}"
    trusted = client_for(url, ca_bundle=str(cert))
    for _ in range(3):
        assert get(trusted)["Item"]["body"] == {"S": "{}"}
    assert len(server.peers()) == 1 and len(sent) == 3
    with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        get(client_for(url, attempts=1, ca_bundle=str(other)))


@pytest.mark.parametrize("signer", ["default", "python"])
def test_requests_arrive_with_a_signature_that_verifies(
    signer: str, serve: Any, sent: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over HTTP and HTTPS, with botocore's default SigV4 signer (the CRT one where awscrt is
    installed, as here) and its Python one (the Lambda runtime has no awscrt)."""
    if signer == "python":
        monkeypatch.setitem(AUTH_TYPE_MAPS, "v4", SigV4Auth)
    cert, key = self_signed(tmp_path, "server")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    for server, url in (
        (plain := serve(), plain.url),
        (secure := serve(tls=tls), f"https://localhost:{secure.server_address[1]}"),
    ):
        client = client_for(url, ca_bundle=str(cert))
        for _ in range(2):
            get(client)
        client.put_item(TableName=TABLE, Item=ITEM["Item"])
        assert [r["signed"] for r in server.requests] == [True, True, True]
        assert len(sent) == 3
        sent.clear()


def test_a_tampered_request_fails_verification() -> None:
    """The verifier above can fail: a body changed after signing does not verify."""
    set_fake_aws_env()
    session = botocore.session.get_session()
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:8000/",
        headers={"X-Amz-Target": "DynamoDB_20120810.GetItem", "Content-Type": "application/x-amz-json-1.0"},
        data=b'{"TableName": "a"}',
    )
    SigV4Auth(session.get_credentials(), "dynamodb", "us-east-1").add_auth(request)
    headers = {**request.headers, "Host": "127.0.0.1:8000"}
    assert signature_matches("POST", "http", "/", headers, b'{"TableName": "a"}')
    assert not signature_matches("POST", "http", "/", headers, b'{"TableName": "b"}')


@pytest.mark.dynamodb_local
def test_the_registry_sends_through_it(dynamodb_local: Any, sent: list[str]) -> None:
    set_fake_aws_env()
    table = f"lepton-registry-{uuid.uuid4().hex[:10]}"
    create_table(boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_local.endpoint_url), table)
    transport_of(bind(table, dynamodb_local.endpoint_url, "us-east-1").connection.connection.client)
    svc = make_service(table, host=dynamodb_local.endpoint_url)
    svc.create_project(ALICE, NewProject(name="transported"))
    assert svc.get_project(ALICE, "transported").members
    assert len(sent) == 2


class Scripted:
    """A raw HTTP/1.1 server that answers the n-th request with the n-th of `answers` (bytes,
    sent as they are; the last one repeats) and closes the connection after an answer when told
    to, for the framings a server may choose."""

    def __init__(self, answers: list[tuple[bytes, bool]]) -> None:
        self.answers = answers
        self.requests = 0
        self.connections = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            while True:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    if not line:
                        return
                    head += line
                fields = (line.partition(b":") for line in head.split(b"\r\n"))
                length = next(int(v) for k, _, v in fields if k.lower() == b"content-length")
                reader.read(length)
                answer, close = self.answers[min(self.requests, len(self.answers) - 1)]
                self.requests += 1
                conn.sendall(answer)
                if close:
                    return

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def scripted() -> Iterator[Any]:
    servers: list[Scripted] = []

    def start(answers: list[tuple[bytes, bool]]) -> Scripted:
        servers.append(Scripted(answers))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


BODY = json.dumps(ITEM).encode()
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def answer(*headers: str, body: bytes = BODY, status: str = "200 OK") -> bytes:
    return "\r\n".join([f"HTTP/1.1 {status}", *headers, "", ""]).encode("latin-1") + body


def chunked(data: bytes) -> bytes:
    return b"%x;ext=1\r\n%s\r\n%x\r\n%s\r\n0\r\nx-trailer: t\r\n\r\n" % (5, data[:5], len(data) - 5, data[5:])


@pytest.mark.parametrize(
    ("answers", "connections", "header"),
    [
        # chunked, with a chunk extension and a trailer; the connection is kept
        ([(answer("Transfer-Encoding: chunked", body=chunked(BODY)), False)], 1, None),
        # Content-Length, a 100 Continue before the answer, and a header sent twice
        ([(CONTINUE + answer(f"Content-Length: {len(BODY)}", "x-seen: a", "X-Seen: b"), False)], 1, "a, b"),
        # no length: the body ends with the connection; a new one for each request
        ([(answer("Connection: close"), True)], 3, None),
        # Connection: close with a length: the answer is read, then the connection is replaced. The
        # server leaves its end open, so only the header (not the idle check) can make it a new one
        ([(answer(f"Content-Length: {len(BODY)}", "Connection: close"), False)], 3, None),
        # HTTP/1.0 closes unless kept alive (again with the server's end left open)
        ([(answer(f"Content-Length: {len(BODY)}").replace(b"HTTP/1.1", b"HTTP/1.0"), False)], 3, None),
        # HTTP/1.0 with keep-alive keeps it
        (
            [
                (
                    answer(f"Content-Length: {len(BODY)}", "Connection: keep-alive").replace(b"HTTP/1.1", b"HTTP/1.0"),
                    False,
                )
            ],
            1,
            None,
        ),
    ],
    ids=["chunked", "continue-and-repeated-header", "to-close", "connection-close", "http-1.0", "http-1.0-keep-alive"],
)
def test_answers_are_read_in_every_framing(
    scripted: Any, answers: list[tuple[bytes, bool]], connections: int, header: str | None
) -> None:
    server = scripted(answers)
    client = client_for(server.url, attempts=1)  # no retry could hide a misread answer
    for _ in range(3):
        response = get(client)
        assert response["Item"]["body"] == {"S": "{}"}
        if header:
            assert response["ResponseMetadata"]["HTTPHeaders"]["x-seen"] == header
    assert server.requests == 3 and server.connections == connections


@pytest.mark.parametrize(
    "broken",
    [
        answer("Content-Length: 500"),  # shorter than it says, then closed
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n",  # the head ends early
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",  # not HTTP
        answer("Transfer-Encoding: chunked", body=b"zz\r\n{}"),  # a bad chunk size
        answer("Transfer-Encoding: chunked", body=b"-1\r\n{}"),  # a negative one
        answer("Content-Length: \u00b2"),  # a digit, but not an ASCII one (the byte 0xb2)
    ],
    ids=["short-body", "short-head", "not-http", "bad-chunk", "negative-chunk", "bad-length"],
)
def test_a_broken_answer_is_a_closed_connection_that_botocore_retries(scripted: Any, broken: bytes) -> None:
    once = scripted([(broken, True), (answer(f"Content-Length: {len(BODY)}"), False)])
    response = get(client_for(once.url, attempts=2))
    assert response["Item"]["body"] == {"S": "{}"}
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert once.requests == 2 and once.connections == 2
    always = scripted([(broken, True)])
    with pytest.raises(ConnectionClosedError):
        get(client_for(always.url, attempts=1))
