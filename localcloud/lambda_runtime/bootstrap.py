"""The process a local Lambda execution environment runs (the equivalent of the Python runtime's
bootstrap). Started by localcloud.lambda_runtime.pool with `python -I bootstrap.py <in-fd> <out-fd>`
and the function's environment; it imports nothing of localcloud, so the handler sees what it
would see on AWS: its code (LAMBDA_TASK_ROOT), its layers (LEPTON_LAYER_PATHS, like /opt/python)
and the runtime's packages.

Protocol on the two pipes: 8-byte big-endian length, then a JSON document.
  request:  {"request_id", "event" (JSON text), "deadline_ms", "invoked_function_arn"}
  response: {"ok": true, "payload": JSON text} | {"ok": false, "error": {errorMessage, errorType, stackTrace}}
"""

from __future__ import annotations

import importlib
import json
import os
import struct
import sys
import time
import traceback
from typing import Any

HEADER = struct.Struct(">Q")


class LambdaContext:
    """The context object the Python runtime passes to handlers."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_function_arn: str) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self.tenant_id = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _read(fd: int, size: int) -> bytes:
    chunks = []
    while size:
        chunk = os.read(fd, size)
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int) -> dict[str, Any]:
    (length,) = HEADER.unpack(_read(fd, HEADER.size))
    return json.loads(_read(fd, length))


def _send(fd: int, message: dict[str, Any]) -> None:
    data = json.dumps(message).encode()
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(frames),
    }


def _load_handler() -> Any:
    spec = os.environ["_HANDLER"]
    module_name, _, function_name = spec.rpartition(".")
    if not module_name:
        raise ValueError(f"Bad handler '{spec}': expected module.function")
    module = importlib.import_module(module_name.replace("/", "."))
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise AttributeError(f"Handler '{function_name}' missing on module '{module_name}'") from None


def main() -> None:
    in_fd, out_fd = int(sys.argv[1]), int(sys.argv[2])
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    layer_paths = [p for p in os.environ.get("LEPTON_LAYER_PATHS", "").split(os.pathsep) if p]
    sys.path[:0] = [task_root, *layer_paths]
    os.chdir(task_root)

    handler: Any = None
    init_error: dict[str, Any] | None = None
    try:
        handler = _load_handler()
    except ImportError as exc:
        init_error = _error(exc, "Runtime.ImportModuleError")
    except Exception as exc:  # noqa: BLE001 - the handler module raised at import: Lambda reports it per invoke
        init_error = _error(exc, "Runtime.HandlerNotFound" if isinstance(exc, AttributeError) else None)

    while True:
        try:
            request = _receive(in_fd)
        except EOFError:
            return
        request_id = request["request_id"]
        print(f"START RequestId: {request_id} Version: {os.environ.get('AWS_LAMBDA_FUNCTION_VERSION')}", flush=True)
        started = time.perf_counter()
        if init_error is not None:
            response: dict[str, Any] = {"ok": False, "error": init_error}
        else:
            context = LambdaContext(request_id, request["deadline_ms"], request["invoked_function_arn"])
            try:
                result = handler(json.loads(request["event"]), context)
                try:
                    response = {"ok": True, "payload": json.dumps(result)}
                except (TypeError, ValueError) as exc:
                    response = {"ok": False, "error": _error(exc, "Runtime.MarshalError")}
            except Exception as exc:  # noqa: BLE001 - the runtime reports every handler error to the caller
                print(f"[ERROR] {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
                traceback.print_exc()
                response = {"ok": False, "error": _error(exc)}
        duration = (time.perf_counter() - started) * 1000
        sys.stdout.flush()
        sys.stderr.flush()
        print(f"END RequestId: {request_id}", flush=True)
        print(f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms", flush=True)
        _send(out_fd, response)


if __name__ == "__main__":
    main()
