"""`lepton local up` as a person uses it: the server started in its own process, the real AWS CLI
in another (with --endpoint-url), the REST API signed with the key `local up` wrote, Ctrl-C, and a
second `local up` on the same state directory finding the registry's data in DynamoDB Local."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cli.api_client import LeptonApi

ROOT = Path(__file__).resolve().parents[2]
STAGE = "e2e"
pytestmark = pytest.mark.timeout(600)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def aws_cli() -> str:
    """The AWS CLI installed with the dev dependencies (next to this interpreter), else the one on PATH."""
    beside = Path(sys.executable).parent / "aws"
    found = str(beside) if beside.exists() else shutil.which("aws")
    assert found, "the AWS CLI (awscli, a dev dependency) is not installed"
    return found


@contextmanager
def local_up(state_dir: Path, port: int, api_port: int) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """Runs `lepton local up` until it says it serves; stops it with SIGINT (Ctrl-C) on the way out
    unless the test already did."""
    command = [sys.executable, "-m", "cli.main", "local", "up", "--port", str(port), "--api-port", str(api_port),
               "--state-dir", str(state_dir), "--stage", STAGE]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + 300
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("Stop with Ctrl-C") or time.monotonic() > deadline:
            break
    try:
        assert lines and lines[-1].startswith("Stop with Ctrl-C"), "\n".join(lines)
        yield process, lines
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    return rest


def env_file(state_dir: Path) -> dict[str, str]:
    values = {}
    for line in (state_dir / "env").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        values[key] = value
    return values


def aws(endpoint: str, env: dict[str, str], *args: str) -> dict[str, object]:
    """The AWS CLI's JSON answer, with the credentials `local up` wrote and nothing else of ours."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LEPTON_"))}
    clean |= {k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    clean["AWS_CONFIG_FILE"] = clean["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    done = subprocess.run(
        [aws_cli(), "--endpoint-url", endpoint, "--output", "json", *args],
        check=False, env=clean, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout or "{}")


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_local_up_serves_the_aws_cli_stops_on_ctrl_c_and_keeps_the_registry(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    port, api_port = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{port}"

    with local_up(state_dir, port, api_port) as (process, banner):
        assert f"AWS endpoint : {endpoint}" in "\n".join(banner)
        env = env_file(state_dir)
        assert env["AWS_ENDPOINT_URL"] == endpoint and env["LEPTON_API_URL"] == f"http://127.0.0.1:{api_port}/v1"

        buckets = [b["Name"] for b in aws(endpoint, env, "s3api", "list-buckets")["Buckets"]]  # type: ignore[index]
        assert env["LEPTON_DATA_BUCKET_NAME"] in buckets
        machines = aws(endpoint, env, "stepfunctions", "list-state-machines")["stateMachines"]
        assert env["LEPTON_LIFECYCLE_STATE_MACHINE_ARN"] in [m["stateMachineArn"] for m in machines]  # type: ignore[union-attr, index]
        backups = aws(endpoint, env, "dynamodb", "describe-continuous-backups",
                      "--table-name", env["LEPTON_REGISTRY_TABLE_NAME"])  # fmt: skip
        pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]  # type: ignore[index]
        assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"

        api = LeptonApi.from_keys(env["LEPTON_API_URL"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
        created = api.call("POST", "/projects", {"name": "kept", "description": "survives a restart"})
        assert created["name"] == "kept"

        rest = stop(process)
        assert process.returncode == 0, rest
        assert "stopping..." in rest and "Traceback" not in rest
        assert port_is_free(port) and port_is_free(api_port)

    # the second run adopts the tables DynamoDB Local kept, with a new admin key (IAM is in memory)
    with local_up(state_dir, port, api_port) as (process, _):
        env = env_file(state_dir)
        api = LeptonApi.from_keys(env["LEPTON_API_URL"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
        assert api.call("GET", "/projects/kept")["description"] == "survives a restart"
        rest = stop(process)
        assert process.returncode == 0, rest
