"""Lambda: run deployed code locally.

moto runs Lambda code only through Docker. This replaces the one seam every caller goes through,
`LambdaFunction.invoke` (direct Invoke, Step Functions tasks, API Gateway, EventBridge), and
moto's S3 notification delivery, with localcloud's LambdaRuntime: the function's own deployment
package, layers, environment, timeout and memory, in a warm worker process. S3 notifications and
InvocationType=Event are asynchronous and retried as the function's event invoke configuration says;
an event given up on is sent, as Lambda's invocation record, to the configuration's on-failure
destination when that is an SQS queue or an SNS topic (EventBridge, Lambda and S3 destinations are
not delivered locally: a warning says so)."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

from moto.awslambda import models as lambda_models
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.utils import get_backend

from localcloud.lambda_runtime.pool import DEFAULT_MAX_EVENT_AGE_S, FunctionSpec, LambdaRuntime

log = logging.getLogger("localcloud.lambda")
_runtime: LambdaRuntime | None = None
_original_invoke = lambda_models.LambdaFunction.invoke


def runtime() -> LambdaRuntime:
    if _runtime is None:
        raise RuntimeError("localcloud's Lambda runtime is not installed")
    return _runtime


def spec_for(fn: Any) -> FunctionSpec:
    """The runnable description of a deployed moto LambdaFunction."""
    rt = runtime()
    backend = get_backend(fn.account_id, fn.region)
    code_dir = rt.unpack(fn.code_bytes, "functions")
    layer_dirs: list[Any] = []
    for layer in fn.layers:
        version = backend.layers_versions_by_arn(layer["Arn"])
        if version is None:
            raise RuntimeError(f"{fn.function_name}: layer {layer['Arn']} no longer exists")
        root = rt.unpack(version.code_bytes, "layers")
        layer_dirs += [root / "python", root / "python" / "lib" / "python3.11" / "site-packages"]
    concurrency = int(fn.reserved_concurrency) if fn.reserved_concurrency not in (None, "") else 4
    invoke_config = fn.event_invoke_config[0].config if fn.event_invoke_config else {}
    on_failure = invoke_config.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
    return FunctionSpec(
        name=fn.function_name,
        arn=fn.function_arn,
        handler=fn.handler,
        runtime=fn.run_time,
        code_dir=code_dir,
        layer_dirs=tuple(layer_dirs),
        environment=tuple(sorted((k, str(v)) for k, v in (fn.environment_vars or {}).items())),
        timeout=float(fn.timeout or 3),
        memory_mb=int(fn.memory_size or 128),
        version=str(fn.version),
        max_concurrency=max(1, min(concurrency, 8)),
        retry_attempts=int(invoke_config.get("MaximumRetryAttempts", 2)),
        max_event_age_s=int(invoke_config.get("MaximumEventAgeInSeconds", DEFAULT_MAX_EVENT_AGE_S)),
        on_failure=on_failure or None,
    )


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return None


def _event_bytes(body: Any) -> bytes:
    if body is None or body == "":
        return b"{}"
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


class TooManyRequests(LambdaClientError):
    """What Lambda answers when a function's reserved concurrency is exhausted (0 throttles all)."""

    code = 429

    def __init__(self, function_name: str) -> None:
        super().__init__("TooManyRequestsException", f"Rate Exceeded. {function_name} has reserved concurrency 0")


def _invoke(self: Any, body: Any, request_headers: Any, response_headers: Any) -> bytes:
    invocation_type = _header(request_headers, "x-amz-invocation-type") or "RequestResponse"
    if self.reserved_concurrency not in (None, "") and int(self.reserved_concurrency) == 0:
        raise TooManyRequests(self.function_name)
    spec = spec_for(self)
    if invocation_type == "DryRun":
        return b""
    if invocation_type == "Event":
        runtime().invoke_async(spec, _event_bytes(body))
        return b""
    result = runtime().invoke(spec, _event_bytes(body))
    if result.function_error:
        response_headers["x-amz-function-error"] = result.function_error
    tail = "\n".join(result.logs).encode()[-4096:]
    response_headers["x-amz-log-result"] = base64.b64encode(tail).decode()
    response_headers["x-amz-executed-version"] = spec.version
    return result.payload


def invoke_async(function_arn: str, account_id: str, region: str, event: Any) -> None:
    """Deliver an event asynchronously (S3 notification, EventBridge target)."""
    fn = get_backend(account_id, region).get_function(function_arn)
    runtime().invoke_async(spec_for(fn), _event_bytes(event))


def _s3_invoke(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
    region = fn_arn.split(":")[3] if fn_arn.count(":") >= 6 else region_name
    invoke_async(fn_arn, account_id, region, event_body)


def send_to_destination(spec: FunctionSpec, record: dict[str, Any]) -> None:
    """Deliver an invocation record to the function's on-failure destination, as Lambda does."""
    destination = spec.on_failure or ""
    parts = destination.split(":")
    if len(parts) < 6:
        log.warning("%s: on-failure destination %r is not an ARN; record dropped", spec.name, destination)
        return
    service, region, account, resource = parts[2], parts[3], parts[4], parts[5]
    body = json.dumps(record)
    if service == "sqs":
        from moto.sqs.models import sqs_backends

        sqs_backends[account][region].send_message(resource, body)
    elif service == "sns":
        from moto.sns.models import sns_backends

        sns_backends[account][region].publish(body, arn=destination)
    else:
        log.warning("%s: on-failure destination %s is not delivered locally (SQS and SNS are)", spec.name, destination)


def install(lambda_runtime: LambdaRuntime) -> None:
    global _runtime
    _runtime = lambda_runtime
    lambda_runtime.failure_sink = send_to_destination
    lambda_models.LambdaFunction.invoke = _invoke  # type: ignore[method-assign]
    from moto.s3 import notifications

    notifications._invoke_awslambda = _s3_invoke


def uninstall() -> None:
    global _runtime
    _runtime = None
    lambda_models.LambdaFunction.invoke = _original_invoke  # type: ignore[method-assign]
