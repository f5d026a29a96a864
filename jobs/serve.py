"""A small HTTP server that hosts inference.py the way the SageMaker inference toolkit does.

    python serve.py [--model-dir DIR] [--port PORT] [--host HOST]

GET /ping answers 200 once the model is loaded; POST /invocations runs input_fn -> predict_fn ->
output_fn with the request's Content-Type and Accept headers. A handler error that carries a
status_code (RequestError) is answered with that status and its JSON body; anything else is a bug
and answers 500 (logged with its traceback).

The model comes from --model-dir, else SM_MODEL_DIR, else /opt/ml/model: an extracted archive (as
in a SageMaker endpoint) or a folder holding model.tar.gz, which model_fn unpacks after checking
its sha256 against LEPTON_MODEL_SHA256 when set. The handler module is the archive's
code/<SAGEMAKER_PROGRAM> (inference.py by default), imported with code/ first on sys.path as the
toolkit does; without a code/ folder (the tarball case), the inference.py beside this file.
Port: --port, else SAGEMAKER_BIND_TO_PORT, else 8080.
Standard library only, so it runs in any Python image that has torch and numpy.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

MAX_BODY = 6 * 1024 * 1024  # SageMaker's real-time payload limit
HERE = Path(__file__).resolve().parent


def resolve_model_dir(arg: str | None) -> Path:
    return Path(arg or os.environ.get("SM_MODEL_DIR") or "/opt/ml/model")


def load_handler(model_dir: Path) -> ModuleType:
    program = os.environ.get("SAGEMAKER_PROGRAM", "inference.py")
    code_dir = model_dir / "code"
    if not (code_dir / program).is_file():
        code_dir = HERE
    sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location(Path(program).stem, code_dir / program)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot import the handler {code_dir / program}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class InferenceServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: ModuleType, model: Any) -> None:
        super().__init__(address, RequestHandler)
        self.handler = handler
        self.model = model


class RequestHandler(BaseHTTPRequestHandler):
    server: InferenceServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _send(self, status: int, body: bytes | str, content_type: str = "application/json") -> None:
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str) -> None:
        self._send(status, json.dumps({"error": message}))

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/ping":
            self._send(HTTPStatus.OK, "{}")
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no route GET {self.path}: use GET /ping or POST /invocations")

    def do_POST(self) -> None:
        if self.path.split("?", 1)[0] != "/invocations":
            self.close_connection = True  # the unread body must not be taken for the next request
            self._error(HTTPStatus.NOT_FOUND, f"no route POST {self.path}: use POST /invocations")
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            self.close_connection = True
            self._error(HTTPStatus.BAD_REQUEST, "invalid Content-Length header")
            return
        if length > MAX_BODY:
            self.close_connection = True
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the body exceeds {MAX_BODY} bytes")
            return
        body = self.rfile.read(length)
        content_type = self.headers.get("Content-Type") or "application/json"
        accept = self.headers.get("Accept") or "application/json"
        handler = self.server.handler
        try:
            data = handler.input_fn(body, content_type)
            prediction = handler.predict_fn(data, self.server.model)
            result = handler.output_fn(prediction, accept)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an HTTP answer
            status = getattr(exc, "status_code", None)
            if isinstance(status, int) and 400 <= status < 500:
                document = getattr(exc, "body", None)  # RequestError's JSON document
                self._send(status, json.dumps(document if isinstance(document, dict) else {"error": str(exc)}))
            else:
                traceback.print_exc()
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(exc).__name__}")
            return
        payload, response_type = result if isinstance(result, tuple) else (result, accept)
        self._send(HTTPStatus.OK, payload, response_type)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="serve.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a container listens on all interfaces
    parser.add_argument("--port", type=int, default=int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")))
    args = parser.parse_args(argv)

    model_dir = resolve_model_dir(args.model_dir)
    handler = load_handler(model_dir)
    try:
        model = handler.model_fn(str(model_dir))
    except Exception as exc:  # noqa: BLE001 - the server must not come up with a model it refused
        print(f"model_fn failed, not serving: {exc}", file=sys.stderr, flush=True)
        return 1
    server = InferenceServer((args.host, args.port), handler, model)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"serving on http://{args.host}:{server.server_port} (model {model_dir})", flush=True)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
