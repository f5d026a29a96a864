"""The SageMaker jobs (jobs/) through localcloud's SageMaker on a deployed Lepton (one per module)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # helper module, named smjobs_* to stay unique
    sys.path.insert(0, str(HERE))

from lepton_stack import deploy_lepton  # noqa: E402
from smjobs_kit import JobsBench  # noqa: E402


@pytest.fixture(scope="module")
def bench(cloud, request: pytest.FixtureRequest) -> JobsBench:
    """A Lepton deployed for this module (stage named after it), with its SageMaker role and job code."""
    stage = "smj-" + Path(request.module.__file__).stem.removeprefix("test_smjobs_")[:11].replace("_", "-")
    lepton = deploy_lepton(cloud, stage)
    pointer = cloud.client("s3").get_object(Bucket=lepton.bucket, Key="code/jobs/current.json")["Body"].read()
    role = lepton.stack.nested["Pipeline"].outputs["SageMakerExecutionRoleArn"]
    return JobsBench(cloud=cloud, bucket=lepton.bucket, role_arn=str(role), code=json.loads(pointer))


@pytest.fixture(scope="module")
def curated_data():
    from smjobs_kit import load_curated_data

    return load_curated_data()
