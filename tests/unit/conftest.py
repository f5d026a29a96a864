"""Unit tests run with the network blocked: anything that opens a socket fails. A test that serves
something on loopback says so with `@pytest.mark.allow_hosts(["127.0.0.1"])` and may reach only
those hosts."""

from __future__ import annotations

from collections.abc import Iterator

# The X-Ray SDK (under powertools' Tracer) creates its UDP emitter socket when first imported; it
# sends nothing while tracing is disabled, but creating it under the block would fail the import.
import aws_xray_sdk.core  # noqa: F401
import pytest
from pytest_socket import disable_socket, enable_socket, socket_allow_hosts

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def _no_network(request: pytest.FixtureRequest) -> Iterator[None]:
    marker = request.node.get_closest_marker("allow_hosts")
    if marker is not None:
        hosts = list(marker.args[0])
        assert set(hosts) <= LOOPBACK, "unit tests may reach loopback only"
        socket_allow_hosts(hosts, allow_unix_socket=True)
    else:
        disable_socket(allow_unix_socket=True)
    yield
    enable_socket()
