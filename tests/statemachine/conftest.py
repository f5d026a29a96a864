"""The lifecycle state machine, deployed from template.yaml into the local AWS (one per module)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # helper module, named lifecycle_kit to stay unique
    sys.path.insert(0, str(HERE))

from lepton_stack import deploy_lepton  # noqa: E402
from lifecycle_kit import Lifecycle, single_threaded_jobs  # noqa: E402


@pytest.fixture(scope="module")
def lepton(cloud: Any, request: pytest.FixtureRequest) -> Any:
    stage = "sm-" + Path(request.module.__file__).stem.removeprefix("test_lifecycle_")[:12].replace("_", "-")
    return deploy_lepton(cloud, stage.rstrip("-"))


@pytest.fixture(scope="module")
def lifecycle(lepton: Any) -> Iterator[Lifecycle]:
    with single_threaded_jobs():
        yield Lifecycle(lepton)
