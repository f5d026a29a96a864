"""LocalCloud: the emulator, its patches, the Lambda runtime and the front doors, in one object.

    with LocalCloud() as cloud:
        stack = cloud.deploy(Path("template.yaml"))
        cloud.client("s3").put_object(Bucket=..., Key="incoming/wine/data.csv", Body=...)
        cloud.wait_idle()

One LocalCloud runs per process (moto's backends are process-wide). It serves the AWS APIs on
`endpoint_url` (the AWS CLI and boto3 use it with --endpoint-url / AWS_ENDPOINT_URL) and the
deployed REST API on `api_url`."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from localcloud.deploy.engine import Provisioner, Stack
from localcloud.deploy.template import Packager, content_key
from localcloud.frontdoor import FrontDoor
from localcloud.lambda_runtime.pool import LambdaRuntime
from localcloud.server import ForwardingApp, ThreadedServer, moto_app

log = logging.getLogger("localcloud")

ACCOUNT = "123456789012"
ARTIFACTS_BUCKET = f"lepton-local-artifacts-{ACCOUNT}"
_active: LocalCloud | None = None
_active_lock = threading.Lock()


class LocalCloud:
    def __init__(
        self,
        state_dir: Path | None = None,
        port: int = 0,
        api_port: int = 0,
        region: str = "us-east-1",
        dynamodb_endpoint: str | None = None,
    ) -> None:
        self.region = region
        self.account = ACCOUNT
        self._own_state = state_dir is None
        self.state_dir = Path(state_dir or tempfile.mkdtemp(prefix="localcloud-"))
        self._port = port
        self._api_port = api_port
        self._dynamodb_endpoint = dynamodb_endpoint
        self._server: ThreadedServer | None = None
        self._api_server: ThreadedServer | None = None
        self.runtime: LambdaRuntime | None = None
        self.frontdoor: FrontDoor | None = None
        self.stacks: dict[str, Stack] = {}
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._streams: set[tuple[str, str]] = set()
        self._moto_config_before: tuple[bool, bool] | None = None

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> LocalCloud:
        global _active
        with _active_lock:
            if _active is not None:
                raise RuntimeError("a LocalCloud is already running in this process")
            _active = self
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._configure_moto()
        # a fresh account, built under that configuration: a backend made earlier in this process (by
        # an in-process `mock_aws`, say) would keep what it was built with, e.g. IAM without the AWS
        # managed policies that the templates attach
        self._reset_moto()
        self._server = ThreadedServer(ForwardingApp(moto_app(), self._dynamodb_endpoint), port=self._port)
        os.environ["MOTO_PORT"] = str(self._server.port)  # moto's Step Functions tasks call back on it
        self.runtime = LambdaRuntime(self._lambda_env(), self.state_dir / "lambda", self._log_sink)
        self._install_patches()
        self._server.start()
        self.frontdoor = FrontDoor(self.region, self.account, self._invoke_function)
        self._api_server = ThreadedServer(self.frontdoor, port=self._api_port).start()
        log.info("local AWS on %s, API front door on %s", self.endpoint_url, self.api_base_url)
        return self

    def stop(self) -> None:
        global _active
        from localcloud.patches import awslambda

        if self.runtime is not None:
            self.runtime.shutdown()
        from localcloud import sagemaker as local_sagemaker

        local_sagemaker.shutdown()
        for server in (self._api_server, self._server):
            if server is not None:
                server.stop()
        awslambda.uninstall()
        self._reset_moto()
        self._restore_moto_config()
        if self._own_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        with _active_lock:
            _active = None

    def __enter__(self) -> LocalCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _configure_moto(self) -> None:
        """moto's process-wide configuration for the runtime: Step Functions runs executions, IAM
        has the AWS managed policies. stop() puts back what it was, so that an in-process `mock_aws`
        later in the same process gets moto's defaults, not ours."""
        from moto.core.config import default_user_config

        self._moto_config_before = (
            default_user_config["stepfunctions"]["execute_state_machine"],
            default_user_config["iam"]["load_aws_managed_policies"],
        )
        default_user_config["stepfunctions"]["execute_state_machine"] = True
        default_user_config["iam"]["load_aws_managed_policies"] = True

    def _restore_moto_config(self) -> None:
        from moto.core.config import default_user_config

        if self._moto_config_before is not None:
            execute, managed = self._moto_config_before
            default_user_config["stepfunctions"]["execute_state_machine"] = execute
            default_user_config["iam"]["load_aws_managed_policies"] = managed

    @staticmethod
    def _reset_moto() -> None:
        from moto.moto_api._internal.models import moto_api_backend

        moto_api_backend.reset()

    def _install_patches(self) -> None:
        from localcloud import sagemaker as local_sagemaker
        from localcloud.patches import awslambda, dynamodb_atomic, events, execution_events, policies, s3_events

        assert self.runtime is not None
        awslambda.install(self.runtime)
        s3_events.install()
        policies.install()
        events.install()
        execution_events.install()
        dynamodb_atomic.install()
        local_sagemaker.install(work_dir=self.state_dir / "sagemaker")

    def _lambda_env(self) -> dict[str, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self.state_dir / "home"),
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "ASIALOCALLAMBDAROLE0",
            "AWS_SECRET_ACCESS_KEY": "local-lambda-role-secret",
            "AWS_SESSION_TOKEN": "local-lambda-role-session",
            "AWS_ENDPOINT_URL": self.endpoint_url,
            # no X-Ray daemon runs locally: powertools' Tracer would only log send failures
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        if self._dynamodb_endpoint:
            env["AWS_ENDPOINT_URL_DYNAMODB"] = self.endpoint_url
        return env

    # -- endpoints and clients --------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None, "start() first"
        return self._server.url

    @property
    def api_base_url(self) -> str:
        assert self._api_server is not None, "start() first"
        return self._api_server.url

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for the local cloud (cached when called without arguments)."""
        if kwargs:
            return self._new_client(service, **kwargs)
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self._new_client(service)
            return self._clients[service]

    def _new_client(self, service: str, **kwargs: Any) -> Any:
        options: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "config": Config(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=50),
        }
        options.update(kwargs)
        factory: Any = boto3.client
        return factory(service, **options)

    # -- deploy -----------------------------------------------------------------------------------

    def deploy(
        self, template: Path, stack_name: str = "lepton-local", parameters: dict[str, Any] | None = None
    ) -> Stack:
        """Package, transform and provision a SAM template (and its nested stacks)."""
        s3 = self.client("s3")
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=ARTIFACTS_BUCKET)

        def upload(content: bytes, suffix: str) -> tuple[str, str]:
            key = content_key(content, suffix)
            s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=key, Body=content)
            return ARTIFACTS_BUCKET, key

        packaged = Packager(upload).package(Path(template))
        stack = Provisioner(self.client, self.region, self.account).deploy(packaged, stack_name, parameters)
        self.stacks[stack_name] = stack
        apis = stack.find("AWS::ApiGateway::RestApi")
        if apis and self.frontdoor is not None:
            self.frontdoor.default_api = apis[0][1].physical_id
        return stack

    def api_url(self, stage: str) -> str:
        return f"{self.api_base_url}/{stage}"

    # -- running things ---------------------------------------------------------------------------

    def _invoke_function(self, function_arn: str, event: bytes) -> tuple[bytes, str | None]:
        from moto.awslambda.utils import get_backend

        from localcloud.patches import awslambda

        fn = get_backend(self.account, self.region).get_function(function_arn)
        result = awslambda.runtime().invoke(awslambda.spec_for(fn), event)
        return result.payload, result.function_error

    def wait_idle(self, timeout: float = 120.0) -> None:
        """Wait for queued asynchronous Lambda invocations (S3 notifications, EventBridge targets)."""
        assert self.runtime is not None
        if not self.runtime.wait_idle(timeout):
            raise TimeoutError(f"asynchronous invocations still running after {timeout}s")

    def wait_execution(self, execution_arn: str, timeout: float = 120.0) -> dict[str, Any]:
        """Poll a Step Functions execution until it leaves RUNNING, wait for its interpreter to
        have ended too (a stopped execution is ABORTED at once, as on AWS, while its task in flight
        finishes; the status change event is sent at the end), and return its description."""
        from localcloud.patches.execution_events import wait_ended

        sfn = self.client("stepfunctions")
        deadline = time.monotonic() + timeout
        while True:
            description = sfn.describe_execution(executionArn=execution_arn)
            if description["status"] != "RUNNING":
                if not wait_ended(execution_arn, max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"{execution_arn} is {description['status']} but still running a task")
                return dict(description)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{execution_arn} still RUNNING after {timeout}s")
            time.sleep(0.1)

    def logs(self, function_name: str) -> list[str]:
        """Every log line a function printed, oldest first."""
        from moto.logs.models import logs_backends

        backend = logs_backends[self.account][self.region]
        group = backend.groups.get(f"/aws/lambda/{function_name}")
        if group is None:
            return []
        lines = []
        for stream in group.streams.values():
            lines += [(e.timestamp, e.message) for e in stream.events]
        return [m for _, m in sorted(lines, key=lambda item: item[0])]

    def _log_sink(self, group: str, stream: str, lines: list[str]) -> None:
        from moto.logs.models import logs_backends

        backend = logs_backends[self.account][self.region]
        with self._log_lock:
            if (group, stream) not in self._streams:
                with contextlib.suppress(Exception):
                    backend.create_log_group(group, {})
                with contextlib.suppress(Exception):
                    backend.create_log_stream(group, stream)
                self._streams.add((group, stream))
            now = int(time.time() * 1000)
            backend.put_log_events(group, stream, [{"timestamp": now, "message": line} for line in lines])
