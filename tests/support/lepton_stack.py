"""Lepton deployed into the local AWS runtime from template.yaml, for tests that go through the
real wiring: S3 notifications, the state machine, EventBridge rules, the API front door."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_kit import wait_until

from cli import jobs_code
from cli.api_client import LeptonApi

ROOT = Path(__file__).resolve().parents[2]
INVOKE_API = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}],
}


@dataclass
class DeployedLepton:
    cloud: Any
    stack: Any
    stage: str
    apis: dict[str, LeptonApi] = field(default_factory=dict)

    @property
    def outputs(self) -> dict[str, Any]:
        return dict(self.stack.outputs)

    @property
    def bucket(self) -> str:
        return str(self.stack.outputs["DataBucketName"])

    @property
    def table(self) -> str:
        return str(self.stack.outputs["RegistryTableName"])

    @property
    def state_machine(self) -> str:
        return str(self.stack.outputs["LifecycleStateMachineArn"])

    def function(self, logical: str) -> str:
        """The physical name of a function, by its logical id anywhere in the stack tree."""
        matches = [r.physical_id for p, r in self.stack.all_resources() if p.endswith("/" + logical) or p == logical]
        assert len(matches) == 1, (logical, matches)
        return str(matches[0])

    def arn(self, user: str) -> str:
        return f"arn:aws:iam::{self.cloud.account}:user/{user}"

    def api(self, user: str = "alice", *, allowed: bool = True) -> LeptonApi:
        """A signed API client for an IAM user (created on first use, with execute-api:Invoke unless
        `allowed` is False)."""
        if user not in self.apis:
            iam = self.cloud.client("iam")
            iam.create_user(UserName=user)
            if allowed:
                iam.put_user_policy(UserName=user, PolicyName="invoke-api", PolicyDocument=json.dumps(INVOKE_API))
            key = iam.create_access_key(UserName=user)["AccessKey"]
            self.apis[user] = LeptonApi.from_keys(self.cloud.api_url("v1"), key["AccessKeyId"], key["SecretAccessKey"])
        return self.apis[user]

    def start(self, name: str, payload: dict[str, Any]) -> str:
        sfn = self.cloud.client("stepfunctions")
        return str(
            sfn.start_execution(stateMachineArn=self.state_machine, name=name, input=json.dumps(payload))[
                "executionArn"
            ]
        )

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        sfn = self.cloud.client("stepfunctions")
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
        while True:
            page = sfn.get_execution_history(**kwargs)
            events += page["events"]
            if not page.get("nextToken"):
                return events
            kwargs["nextToken"] = page["nextToken"]

    def states_entered(self, execution_arn: str) -> list[str]:
        return [e[key]["name"] for e in self.history(execution_arn) for key in e if key == "stateEnteredEventDetails"]

    def wait_for(self, predicate: Any, timeout: float = 60.0, interval: float = 0.2) -> Any:
        return wait_until(predicate, timeout, interval)


def deploy_lepton(cloud: Any, stage: str) -> DeployedLepton:
    """Deploy template.yaml (stage names everything) and publish the SageMaker job code."""
    assert re.fullmatch(r"[a-z][a-z0-9-]{1,15}", stage), stage
    stack = cloud.deploy(ROOT / "template.yaml", f"lepton-{stage}", {"Stage": stage})
    jobs_code.publish(cloud.client("s3"), stack.outputs["DataBucketName"])
    return DeployedLepton(cloud, stack, stage)


def role_documents(cloud: Any, role_arn: str) -> list[str]:
    """Every identity policy of a role: inline and attached."""
    iam = cloud.client("iam")
    name = role_arn.rsplit("/", 1)[-1]
    documents = [
        json.dumps(iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"])
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
    ]
    for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"]
        documents.append(json.dumps(document["Document"]))
    return documents


def denied(documents: list[str], needs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (action, resource) pairs no statement allows, evaluated with moto's IAM policy engine."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    def allowed(action: str, resource: str) -> bool:
        results = [IAMPolicy(d).is_action_permitted(action, resource) for d in documents]
        return PermissionResult.DENIED not in results and PermissionResult.PERMITTED in results

    return [(action, resource) for action, resource in needs if not allowed(action, resource)]
