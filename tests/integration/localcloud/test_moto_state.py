"""The local AWS starts from a fresh account whatever moto did before in the same process."""

from __future__ import annotations

import boto3
from moto import mock_aws

from localcloud import LocalCloud

BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def test_a_cloud_started_after_in_process_moto_has_the_aws_managed_policies_and_nothing_else() -> None:
    # an in-process mock (as unit tests use) builds IAM without AWS's managed policies and leaves
    # its data behind
    earlier = mock_aws(config={"iam": {"load_aws_managed_policies": False}})
    earlier.start()
    try:
        iam = boto3.client("iam", region_name="us-east-1")
        iam.create_role(RoleName="left-behind", AssumeRolePolicyDocument="{}")
        assert not iam.list_policies(Scope="AWS")["Policies"]
    finally:
        earlier.stop(remove_data=False)
    with LocalCloud() as cloud:
        iam = cloud.client("iam")
        assert iam.get_policy(PolicyArn=BASIC_EXECUTION)["Policy"]["PolicyName"] == "AWSLambdaBasicExecutionRole"
        assert [r["RoleName"] for r in iam.list_roles()["Roles"]] == []
