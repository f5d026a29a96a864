"""`lepton local ...`: run Lepton's template in the local AWS runtime."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ADMIN_USER = "lepton-local-admin"
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["execute-api:Invoke"], "Resource": "*"}],
}


def create_admin(cloud: Any, state_dir: Path) -> dict[str, str]:
    """An IAM user allowed to call the API, with its key saved where the CLI and people find it."""
    iam = cloud.client("iam")
    iam.create_user(UserName=ADMIN_USER)
    iam.put_user_policy(UserName=ADMIN_USER, PolicyName="invoke-api", PolicyDocument=json.dumps(ADMIN_POLICY))
    key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
    credentials = {
        "aws_access_key_id": key["AccessKeyId"],
        "aws_secret_access_key": key["SecretAccessKey"],
        "user_arn": iam.get_user(UserName=ADMIN_USER)["User"]["Arn"],
    }
    path = state_dir / "credentials.json"
    path.write_text(json.dumps(credentials, indent=2))
    path.chmod(0o600)
    return credentials


def write_env(cloud: Any, stack: Any, stage: str, state_dir: Path, credentials: dict[str, str]) -> Path:
    """A file to `source` in another shell: the endpoints and the deployed names."""
    lines = {
        "AWS_ENDPOINT_URL": cloud.endpoint_url,
        "AWS_DEFAULT_REGION": cloud.region,
        "AWS_ACCESS_KEY_ID": credentials["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": credentials["aws_secret_access_key"],
        **{f"LEPTON_{_snake(k).upper()}": str(v) for k, v in stack.outputs.items()},
        # after the outputs: the template's ApiUrl names the API on AWS, the front door serves it here
        "LEPTON_API_URL": cloud.api_url("v1"),
        "LEPTON_STAGE": stage,
    }
    path = state_dir / "env"
    path.write_text("".join(f"export {k}={v}\n" for k, v in lines.items()))
    return path


def _snake(name: str) -> str:
    out = ""
    for i, ch in enumerate(name):
        if ch.isupper() and i and not name[i - 1].isupper():
            out += "_"
        out += ch
    return out.lower()


def up(args: argparse.Namespace) -> int:
    from localcloud import LocalCloud

    state_dir = Path(args.state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with contextlib.ExitStack() as stack_ctx:
        dynamodb_endpoint = None
        if args.dynamodb == "local":
            from localcloud.dynamodb_local import DynamoDBLocal

            ddb = stack_ctx.enter_context(DynamoDBLocal(db_path=state_dir / "dynamodb"))
            dynamodb_endpoint = ddb.endpoint_url
        cloud = stack_ctx.enter_context(
            LocalCloud(
                state_dir=state_dir / "runtime",
                port=args.port,
                api_port=args.api_port,
                dynamodb_endpoint=dynamodb_endpoint,
            )
        )
        stack = cloud.deploy(ROOT / "template.yaml", f"lepton-{args.stage}", {"Stage": args.stage})
        credentials = create_admin(cloud, state_dir)
        env_file = write_env(cloud, stack, args.stage, state_dir, credentials)
        print(
            f"Lepton is running locally ({len(list(stack.all_resources()))} resources deployed in {stack.seconds:.1f}s)"
        )
        print(f"  AWS endpoint : {cloud.endpoint_url}   (aws --endpoint-url {cloud.endpoint_url} ...)")
        print(f"  REST API     : {cloud.api_url('v1')}   (SigV4, IAM user {ADMIN_USER})")
        store = f"DynamoDB Local, persistent in {state_dir / 'dynamodb'}" if dynamodb_endpoint else "in memory"
        print(f"  DynamoDB     : {store}")
        for key, value in stack.outputs.items():
            print(f"  {key:<24} {value}")
        print(f"In another shell: source {env_file}")
        print("Stop with Ctrl-C.")
        sys.stdout.flush()
        stop.wait()
        print("stopping...")
    return 0


def register(subparsers: Any) -> None:
    local = subparsers.add_parser("local", help="the local AWS runtime")
    commands = local.add_subparsers(dest="local_command", required=True)
    start = commands.add_parser("up", help="deploy template.yaml locally and serve the AWS APIs until Ctrl-C")
    start.add_argument("--port", type=int, default=int(os.environ.get("LEPTON_LOCAL_PORT", "4566")))
    start.add_argument("--api-port", type=int, default=int(os.environ.get("LEPTON_LOCAL_API_PORT", "4567")))
    start.add_argument("--stage", default="local")
    start.add_argument("--state-dir", default=str(ROOT / ".localcloud"))
    start.add_argument(
        "--dynamodb",
        choices=["local", "memory"],
        default="local",
        help="DynamoDB Local (persistent, the default) or moto's in-memory DynamoDB",
    )
    start.set_defaults(func=up)
