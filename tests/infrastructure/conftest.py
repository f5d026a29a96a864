from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from localcloud.deploy.render import render
from localcloud.deploy.template import load

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = [ROOT / "template.yaml", *sorted((ROOT / "stacks").glob("*.yaml"))]
ASL_FILES = sorted((ROOT / "stacks" / "statemachines").glob("*.asl.json"))


@pytest.fixture(scope="session")
def transformed() -> dict[str, dict[str, Any]]:
    """The CloudFormation each template becomes after the SAM transform."""
    return render(ROOT / "template.yaml")


@pytest.fixture(scope="session")
def sam_templates() -> dict[str, dict[str, Any]]:
    return {str(p.relative_to(ROOT)): load(p) for p in TEMPLATES}
