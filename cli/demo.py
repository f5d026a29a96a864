"""`lepton demo`: the lifecycle on a bundled dataset, on the local AWS, through the same interfaces
people use on AWS: S3 uploads, the REST API (SigV4-signed, as IAM users) and Step Functions.

    deploy template.yaml -> two people (a data scientist, an approver) -> create a project
    -> upload data/breast_cancer.csv -> ingest (contract inferred, cleaned, split, profiled)
    -> lifecycle: SageMaker training job -> evaluation job -> registered version 1
    -> a refused upload quarantined with its report
    -> a second dataset -> version 2 -> diff 1..2 -> approve -> promote -> one-call rollback
    -> alias history and the audit log's verification
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from cli import jobs_code
from cli.api_client import LeptonApi

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT / "data" / "breast_cancer.csv"
PROJECT = "breast-cancer"
INVOKE_API = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": "*"}],
}


class DemoFailed(Exception):
    pass


def say(text: str = "") -> None:
    print(text, flush=True)


def step(text: str) -> None:
    say(f"\n== {text}")


def wait(what: str, check: Any, timeout: float = 300.0, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoFailed(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def person(cloud: Any, name: str) -> tuple[LeptonApi, str]:
    iam = cloud.client("iam")
    arn = iam.create_user(UserName=name)["User"]["Arn"]
    iam.put_user_policy(UserName=name, PolicyName="invoke-api", PolicyDocument=json.dumps(INVOKE_API))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return LeptonApi.from_keys(cloud.api_url("v1"), key["AccessKeyId"], key["SecretAccessKey"]), arn


def run_lifecycle(cloud: Any, api: LeptonApi, state_machine: str, upload: Any, number: int) -> dict[str, Any]:
    """Upload a dataset, follow ingest and the execution it starts, return the registered version."""
    upload()

    def numbered() -> dict[str, Any] | None:
        items = api.get(f"/projects/{PROJECT}/datasets").get("items") or []
        return next((d for d in items if d["number"] == number), None)

    dataset = wait(f"dataset {number}", numbered)
    say(
        f"dataset {dataset['number']}: {dataset['dataset_id']}  rows in {dataset['rows_in']} -> "
        f"train {dataset['rows']['train']} / validation {dataset['rows']['validation']} / "
        f"test {dataset['rows']['test']}"
        f"  (contract {dataset['contract_source']})"
    )
    sfn = cloud.client("stepfunctions")
    executions = wait(
        "the lifecycle execution",
        lambda: [
            e
            for e in sfn.list_executions(stateMachineArn=state_machine)["executions"]
            if dataset["dataset_id"] in e["name"]
        ],
    )
    arn = executions[0]["executionArn"]
    say(f"execution {executions[0]['name']} started by the upload; running...")
    started = time.monotonic()
    done = cloud.wait_execution(arn, timeout=900)
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    path = [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]
    say(f"execution {done['status']} in {time.monotonic() - started:.0f}s: {' -> '.join(path)}")
    if done["status"] != "SUCCEEDED":
        raise DemoFailed(f"the lifecycle failed: {done.get('error')}: {done.get('cause')}")
    registered = json.loads(done["output"])
    version = api.get(f"/projects/{PROJECT}/versions/{registered['version']}")
    metrics = version["metrics"]
    say(
        f"version {version['number']} registered ({version['status']}): test accuracy "
        f"{metrics.get('test:accuracy', float('nan')):.4f}, F1 {metrics.get('test:f1_macro', float('nan')):.4f}, "
        f"ROC-AUC {metrics.get('test:roc_auc', float('nan')):.4f}, FGSM accuracy "
        f"{metrics.get('test:fgsm_accuracy', float('nan')):.4f}"
    )
    say(
        f"  artifact {version['artifact_uri']}\n  sha256 {version['artifact_sha256']}  "
        f"code {version['code_version'][:12]}"
        f"  training job {version['training_job']}"
    )
    return dict(version)


def second_dataset() -> bytes:
    """The bundled data without every tenth row: new content, the same contract."""
    lines = DATASET.read_text().splitlines(keepends=True)
    return "".join([lines[0], *[line for i, line in enumerate(lines[1:]) if i % 10 != 3]]).encode()


def demo(args: argparse.Namespace) -> int:
    from localcloud import LocalCloud

    state = Path(args.state_dir) if args.state_dir else Path(tempfile.mkdtemp(prefix="lepton-demo-"))
    with LocalCloud(state_dir=state) as cloud:
        step("Deploying template.yaml into the local AWS")
        stack = cloud.deploy(ROOT / "template.yaml", "lepton-demo", {"Stage": "demo"})
        bucket = stack.outputs["DataBucketName"]
        code = jobs_code.publish(cloud.client("s3"), bucket)
        say(
            f"{len(list(stack.all_resources()))} resources in {stack.seconds:.1f}s; "
            f"job code {code['code_version'][:12]} "
            f"published; API {cloud.api_url('v1')}"
        )

        step("Two people: a data scientist (creates the project, becomes its admin) and an approver")
        dana, _ = person(cloud, "dana")
        avery, avery_arn = person(cloud, "avery")
        dana.post(
            "/projects",
            {
                "name": PROJECT,
                "description": "Breast cancer diagnosis (scikit-learn's data)",
                "training": {"hyperparameters": {"epochs": 60, "hidden_sizes": "64,32", "patience": 8}},
                "policy": {"primary_metric": "test:accuracy", "require_approval": True},
            },
        )
        dana.put(f"/projects/{PROJECT}/members", {"principal": avery_arn, "role": "approver"})
        say(f"project {PROJECT}: members {dana.get(f'/projects/{PROJECT}')['members']}")

        s3 = cloud.client("s3")

        def upload(body: bytes, name: str) -> Any:
            return lambda: s3.put_object(Bucket=bucket, Key=f"incoming/{PROJECT}/{name}", Body=body)

        step("Uploading data/breast_cancer.csv to incoming/ -> ingest -> the lifecycle")
        first = run_lifecycle(
            cloud, dana, stack.outputs["LifecycleStateMachineArn"], upload(DATASET.read_bytes(), "breast_cancer.csv"), 1
        )

        step("A refused upload: quarantined with a report, nothing else written")
        s3.put_object(
            Bucket=bucket, Key=f"incoming/{PROJECT}/broken.csv", Body=io.BytesIO(b"mean radius,target\nabc,1\n")
        )
        rejection = wait("the rejection", lambda: dana.get(f"/projects/{PROJECT}/rejections").get("items"))[0]
        for problem in rejection["problems"][:3]:
            say(f"  {problem['code']}: {problem['message']}")
        say(f"  report: s3://{bucket}/{rejection['report_key']}")

        step("A second dataset (every tenth row removed) -> version 2")
        second = run_lifecycle(
            cloud, dana, stack.outputs["LifecycleStateMachineArn"], upload(second_dataset(), "breast_cancer_v2.csv"), 2
        )

        step("Diff between the two versions")
        diff = dana.get(f"/projects/{PROJECT}/versions/{first['number']}/diff/{second['number']}")
        for name, change in sorted(diff.get("metrics", {}).items()):
            if name.startswith("test:") and isinstance(change, dict) and change.get("delta") is not None:
                say(f"  {name:<28} {change.get('a')!s:>10} -> {change.get('b')!s:<10} delta {change['delta']:+.4f}")
        say(f"  datasets: {diff.get('dataset', {})}")

        step("Approval and promotion (the approver), then a one-call rollback")
        for version in (first, second):
            avery.post(f"/projects/{PROJECT}/versions/{version['number']}/approve", {"reason": "metrics reviewed"})
        for version, why in ((first, "first production model"), (second, "newer data")):
            # serving (a later part of the lifecycle) moves a version to DEPLOYING while its endpoint updates
            avery.post(
                f"/projects/{PROJECT}/versions/{version['number']}/transition",
                {"status": "DEPLOYING", "reason": "deploying"},
            )
            avery.post(f"/projects/{PROJECT}/versions/{version['number']}/promote", {"reason": why})
        production = dana.get(f"/projects/{PROJECT}/aliases/production")
        say(f"production -> version {production['version']}")
        vic, vic_arn = person(cloud, "vic")
        dana.put(f"/projects/{PROJECT}/members", {"principal": vic_arn, "role": "viewer"})
        refused = vic.request("POST", f"/projects/{PROJECT}/versions/{first['number']}/promote", {"reason": "mine"})
        say(f"  a viewer may not move production: {refused.status_code} {refused.json().get('message')}")
        avery.post(f"/projects/{PROJECT}/rollback", {"reason": "demo: roll back in one call"})
        production = dana.get(f"/projects/{PROJECT}/aliases/production")
        rolled_back = dana.get(f"/projects/{PROJECT}/versions/{second['number']}")["status"]
        say(f"rolled back: production -> version {production['version']}; version {second['number']} is {rolled_back}")
        for entry in dana.get(f"/projects/{PROJECT}/aliases/production/history").get("items", [])[:5]:
            say(
                f"  {entry.get('at')}  {entry.get('action')}: {entry.get('previous_version')} -> {entry.get('version')}"
            )

        step("The audit log")
        verify = dana.get(f"/projects/{PROJECT}/audit/verify")
        say(f"{verify}")
        if not verify.get("ok", verify.get("valid", False)):
            raise DemoFailed("the audit log did not verify")
        say("\nDemo complete: data -> training -> evaluation -> versions -> approval -> promotion -> rollback.")
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("demo", help="run the lifecycle on a bundled dataset in the local AWS")
    parser.add_argument("--state-dir", help="where the local runtime keeps its files (default: a temporary folder)")
    parser.set_defaults(func=demo)
