"""The SageMaker jobs (jobs/) through localcloud's SageMaker on a deployed Lepton (one per module)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
# helper modules, named to stay unique: smjobs_kit here, lifecycle_kit beside the state machine tests
for folder in (HERE, HERE.parents[1] / "statemachine"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from lepton_stack import deploy_lepton  # noqa: E402
from smjobs_kit import JobsBench, load_curated_data  # noqa: E402


@pytest.fixture(scope="module")
def lepton(cloud: Any, request: pytest.FixtureRequest) -> Any:
    """Lepton deployed for this module (its stage named after the module)."""
    stage = "smj-" + Path(request.module.__file__).stem.removeprefix("test_smjobs_")[:11].replace("_", "-")
    return deploy_lepton(cloud, stage.rstrip("-"))


@pytest.fixture(scope="module")
def bench(cloud: Any, lepton: Any) -> JobsBench:
    """SageMaker requests with the deployment's bucket, SageMaker role and published job code."""
    pointer = cloud.client("s3").get_object(Bucket=lepton.bucket, Key="code/jobs/current.json")["Body"].read()
    role = lepton.stack.nested["Pipeline"].outputs["SageMakerExecutionRoleArn"]
    return JobsBench(cloud=cloud, bucket=lepton.bucket, role_arn=str(role), code=json.loads(pointer))


@pytest.fixture(scope="module")
def curated_data() -> Any:
    return load_curated_data()
