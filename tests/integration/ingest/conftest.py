"""Integration tests of the ingest function on moto in-process (no network needed)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for extra in (HERE, HERE.parents[1] / "unit" / "ingest"):  # helper modules, named ingest_* to stay unique
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from ingest_harness import Aws, moto_world  # noqa: E402


@pytest.fixture
def aws() -> Iterator[Aws]:
    with moto_world() as world:
        yield world
