"""Local Lambda execution environments.

Each function gets warm worker processes (localcloud/lambda_runtime/bootstrap.py) started with the
function's own environment, code and layers, exactly as deployed: the code is the deployment
package the function was created with, unpacked once per CodeSha256. A worker handles one
invocation at a time; the first one pays the cold start. Invocations over the function's
concurrency wait for a free worker, a timeout kills the worker and reports `Sandbox.Timedout`, and
asynchronous invocations (S3 notifications, EventBridge targets, InvocationType=Event) are queued
and retried on error as the function's event invoke configuration says (twice by default, as Lambda
does); an event whose every attempt failed becomes Lambda's invocation record, handed to the
failure sink when the function has an on-failure destination.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localcloud.lambda_runtime.bootstrap import HEADER

log = logging.getLogger("localcloud.lambda")

BOOTSTRAP = str(Path(__file__).with_name("bootstrap.py"))
SUPPORTED_RUNTIMES = {"python3.11", "python3.12", "python3.13"}
LogSink = Callable[[str, str, list[str]], None]  # (log group, log stream, lines)
DEFAULT_MAX_EVENT_AGE_S = 21600


@dataclass(frozen=True)
class FunctionSpec:
    """What the runtime needs to run one function version, read from the deployed function."""

    name: str
    arn: str
    handler: str
    runtime: str
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    environment: tuple[tuple[str, str], ...]
    timeout: float
    memory_mb: int
    version: str = "$LATEST"
    max_concurrency: int = 4
    retry_attempts: int = 2  # the event invoke configuration's MaximumRetryAttempts (0-2)
    max_event_age_s: int = DEFAULT_MAX_EVENT_AGE_S  # and its MaximumEventAgeInSeconds
    on_failure: str | None = None  # the ARN of its on-failure destination

    @property
    def fingerprint(self) -> str:
        text = json.dumps(
            [
                self.handler,
                self.runtime,
                str(self.code_dir),
                [str(p) for p in self.layer_dirs],
                self.environment,
                self.memory_mb,
            ],
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"


@dataclass
class InvokeResult:
    payload: bytes
    function_error: str | None  # "Unhandled" when the function failed, as Lambda reports it
    logs: list[str] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def error(self) -> dict[str, Any] | None:
        if self.function_error is None:
            return None
        return json.loads(self.payload)


class _Worker:
    def __init__(self, spec: FunctionSpec, base_env: dict[str, str], sink: LogSink) -> None:
        self.spec = spec
        self.stream = f"{time.strftime('%Y/%m/%d')}/[{spec.version}]{uuid.uuid4().hex}"
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        env = {
            **base_env,
            # the Lambda Python runtime's botocore has no awscrt (aws/aws-lambda-base-images#147), so it
            # signs with its own SigV4; this venv has awscrt only through the SAM CLI (boto3[crt])
            "BOTO_DISABLE_CRT": "true",
            **dict(spec.environment),
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "LEPTON_LAYER_PATHS": os.pathsep.join(str(p) for p in spec.layer_dirs),
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(spec.timeout)),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.stream,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "PYTHONUNBUFFERED": "1",
            "TZ": ":UTC",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-I", BOOTSTRAP, str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w),
            env=env,
            cwd=str(spec.code_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._closed = False
        self._lines: list[str] = []
        self._lines_lock = threading.Condition()
        self._sink = sink
        self._reader = threading.Thread(target=self._pump, name=f"lambda-log-{spec.name}", daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for raw in iter(self.process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with contextlib.suppress(Exception):  # a log sink failure must not break the function
                self._sink(self.spec.log_group, self.stream, [line])
            with self._lines_lock:  # after the sink: a line taken here is in CloudWatch Logs already
                self._lines.append(line)
                self._lines_lock.notify_all()

    def take_lines(self, request_id: str | None = None, wait: float = 2.0) -> list[str]:
        """The log lines printed since the last call; with a request id, once its REPORT line arrived
        (the runtime prints it before answering, so it is in the pipe already)."""
        marker = f"REPORT RequestId: {request_id}"
        with self._lines_lock:
            if request_id is not None:
                self._lines_lock.wait_for(lambda: any(line.startswith(marker) for line in self._lines), wait)
            lines, self._lines = self._lines, []
        return lines

    def invoke(self, event: bytes, request_id: str) -> InvokeResult:
        started = time.perf_counter()
        deadline = time.time() + self.spec.timeout
        request = {
            "request_id": request_id,
            "event": event.decode() if event else "{}",
            "deadline_ms": int(deadline * 1000),
            "invoked_function_arn": self.spec.arn,
        }
        data = json.dumps(request).encode()
        os.write(self._to_child, HEADER.pack(len(data)) + data)
        response = self._receive(deadline)
        duration = (time.perf_counter() - started) * 1000
        if response is None:
            self.kill()
            error = {
                "errorMessage": f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {request_id} "
                f"Task timed out after {self.spec.timeout:.2f} seconds",
                "errorType": "Sandbox.Timedout",
            }
            return InvokeResult(json.dumps(error).encode(), "Unhandled", self.take_lines(), duration)
        lines = self.take_lines(request_id)
        if response.get("ok"):
            return InvokeResult(response["payload"].encode(), None, lines, duration)
        return InvokeResult(json.dumps(response["error"]).encode(), "Unhandled", lines, duration)

    def _receive(self, deadline: float) -> dict[str, Any] | None:
        import select

        buffer = b""
        needed = HEADER.size
        header_done = False
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._from_child], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:  # the process died (out of memory, os._exit, a crash)
                code = self.process.wait(timeout=5)
                return {
                    "ok": False,
                    "error": {
                        "errorMessage": f"RequestId: the execution environment exited with status {code}",
                        "errorType": "Runtime.ExitError",
                    },
                }
            buffer += chunk
            if not header_done and len(buffer) >= HEADER.size:
                (needed,) = HEADER.unpack(buffer[: HEADER.size])
                buffer = buffer[HEADER.size :]
                header_done = True
            if header_done and len(buffer) >= needed:
                return json.loads(buffer[:needed])

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Idempotent: the pipe descriptors are closed once (a second close could hit a descriptor
        number the OS has since given to another worker)."""
        if self._closed:
            return
        self._closed = True
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, 9)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        for fd in (self._to_child, self._from_child):
            with contextlib.suppress(OSError):
                os.close(fd)


@dataclass
class _AsyncEvent:
    spec: FunctionSpec
    event: bytes
    request_id: str
    received: float = field(default_factory=time.time)
    attempts: int = 0


def _json_or_text(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return data.decode(errors="replace")


def invocation_record(item: _AsyncEvent, result: InvokeResult, condition: str) -> dict[str, Any]:
    """What Lambda sends to an on-failure destination: the invocation record of an asynchronous
    event it gave up on (docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html)."""
    now = time.time()
    return {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z",
        "requestContext": {
            "requestId": item.request_id,
            "functionArn": f"{item.spec.arn}:{item.spec.version}",
            "condition": condition,
            "approximateInvokeCount": item.attempts,
        },
        "requestPayload": _json_or_text(item.event),
        "responseContext": {
            "statusCode": 200,
            "executedVersion": item.spec.version,
            "functionError": result.function_error,
        },
        "responsePayload": _json_or_text(result.payload),
    }


class _FunctionPool:
    def __init__(self, spec: FunctionSpec) -> None:
        self.spec = spec
        self.idle: list[_Worker] = []
        self.all: list[_Worker] = []
        self.slots = threading.BoundedSemaphore(spec.max_concurrency)
        self.lock = threading.Lock()


class LambdaRuntime:
    """Runs deployed Lambda functions in warm local worker processes."""

    def __init__(
        self,
        base_env: dict[str, str],
        work_dir: Path,
        log_sink: LogSink | None = None,
        retry_delays: tuple[float, ...] = (0.5, 1.0),
    ) -> None:
        self._base_env = base_env
        self._work_dir = work_dir
        self._sink: LogSink = log_sink or (lambda group, stream, lines: None)
        self._pools: dict[str, _FunctionPool] = {}
        self._lock = threading.Lock()
        self._retry_delays = retry_delays
        self._async: queue.Queue[_AsyncEvent | None] = queue.Queue()
        # where an event goes once every attempt failed and the function has an on-failure destination
        self.failure_sink: Callable[[FunctionSpec, dict[str, Any]], None] | None = None
        self._pending = 0
        self._pending_cond = threading.Condition()
        self._async_threads = [
            threading.Thread(target=self._async_loop, name=f"lambda-async-{i}", daemon=True) for i in range(4)
        ]
        for t in self._async_threads:
            t.start()
        self.cold_starts = 0
        self.invocations = 0

    # -- packages ---------------------------------------------------------------------------------

    def unpack(self, code: bytes, kind: str) -> Path:
        """Unpack a deployment package (or layer) once per content hash and return its folder."""
        digest = hashlib.sha256(code).hexdigest()
        target = self._work_dir / kind / digest[:24]
        if not target.exists():
            staging = target.with_name(target.name + f".{uuid.uuid4().hex}.tmp")
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                archive.extractall(staging)
            try:
                staging.rename(target)
            except OSError:  # another thread unpacked the same package first
                shutil.rmtree(staging, ignore_errors=True)
        return target

    # -- invocation -------------------------------------------------------------------------------

    def invoke(self, spec: FunctionSpec, event: bytes, request_id: str | None = None) -> InvokeResult:
        if spec.runtime not in SUPPORTED_RUNTIMES:
            error = {"errorMessage": f"Runtime {spec.runtime} is not runnable locally", "errorType": "InvalidRuntime"}
            return InvokeResult(json.dumps(error).encode(), "Unhandled")
        pool = self._pool(spec)
        request_id = request_id or str(uuid.uuid4())
        with pool.slots:
            worker = self._acquire(pool)
            try:
                result = worker.invoke(event, request_id)
            finally:
                self._release(pool, worker)
        self.invocations += 1
        if result.function_error:
            log.info("%s failed: %s", spec.name, result.payload[:500])
        return result

    def invoke_async(self, spec: FunctionSpec, event: bytes) -> str:
        item = _AsyncEvent(spec, event, str(uuid.uuid4()))
        with self._pending_cond:
            self._pending += 1
        self._async.put(item)
        return item.request_id

    def _async_loop(self) -> None:
        while True:
            item = self._async.get()
            if item is None:
                return
            retry = False
            try:
                item.attempts += 1
                result = self.invoke(item.spec, item.event, item.request_id)
                if result.function_error:
                    retry = self._retry_or_give_up(item, result)
            except Exception:  # keep the queue alive whatever happens
                log.exception("async invocation of %s failed", item.spec.name)
            finally:
                if not retry:
                    with self._pending_cond:
                        self._pending -= 1
                        self._pending_cond.notify_all()

    def _retry_or_give_up(self, item: _AsyncEvent, result: InvokeResult) -> bool:
        """Queue a failed event's next attempt (True), or give it up (False): logged, and its
        invocation record handed to the on-failure destination if the function has one."""
        retries = item.attempts - 1
        if retries < min(item.spec.retry_attempts, len(self._retry_delays)):
            delay = self._retry_delays[retries]
            if time.time() + delay - item.received <= item.spec.max_event_age_s:
                threading.Timer(delay, self._async.put, args=(item,)).start()
                return True
            condition = "EventAgeExceeded"
        else:
            condition = "RetriesExhausted"
        log.warning("%s gave up on an event after %d attempts (%s)", item.spec.name, item.attempts, condition)
        if item.spec.on_failure and self.failure_sink is not None:
            self.failure_sink(item.spec, invocation_record(item, result, condition))
        return False

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until every queued asynchronous invocation (retries included) has finished."""
        end = time.monotonic() + timeout
        with self._pending_cond:
            while self._pending:
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return False
                self._pending_cond.wait(remaining)
        return True

    # -- workers ----------------------------------------------------------------------------------

    def _pool(self, spec: FunctionSpec) -> _FunctionPool:
        with self._lock:
            pool = self._pools.get(spec.arn)
            if pool is None or pool.spec.fingerprint != spec.fingerprint:
                if pool is not None:  # the function's code or configuration changed: new environments
                    self._retire(pool)
                pool = self._pools[spec.arn] = _FunctionPool(spec)
            return pool

    def _acquire(self, pool: _FunctionPool) -> _Worker:
        with pool.lock:
            while pool.idle:
                worker = pool.idle.pop()
                if worker.alive:
                    return worker
                worker.kill()  # exited while idle: release its pipes
                pool.all.remove(worker)
        worker = _Worker(pool.spec, self._base_env, self._sink)
        self.cold_starts += 1
        with pool.lock:
            pool.all.append(worker)
        return worker

    def _release(self, pool: _FunctionPool, worker: _Worker) -> None:
        with pool.lock:
            if worker.alive and pool is self._pools.get(pool.spec.arn):
                pool.idle.append(worker)
            else:
                worker.kill()
                if worker in pool.all:
                    pool.all.remove(worker)

    @staticmethod
    def _retire(pool: _FunctionPool) -> None:
        with pool.lock:
            for worker in pool.idle:
                worker.kill()
            pool.idle.clear()

    def evict(self, function_name: str) -> None:
        """End a function's execution environments: its next invocation is a cold start."""
        with self._lock:
            for pool in [p for p in self._pools.values() if p.spec.name == function_name]:
                with pool.lock:
                    for worker in pool.idle:
                        worker.kill()
                        pool.all.remove(worker)
                    pool.idle.clear()

    def worker_count(self, function_name: str) -> int:
        return sum(len(p.all) for p in self._pools.values() if p.spec.name == function_name)

    def shutdown(self) -> None:
        for _ in self._async_threads:
            self._async.put(None)
        with self._lock:
            for pool in self._pools.values():
                with pool.lock:
                    for worker in pool.all:
                        worker.kill()
            self._pools.clear()
