"""serve.py hosting the archive's own inference.py over HTTP, and inference.py's contract in process."""

from __future__ import annotations

import http.client
import json
import re
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest

from lepton_ml import archive
from lepton_ml.errors import ArchiveError, RequestError

if TYPE_CHECKING:
    from conftest import TrainingRun

pytestmark = [pytest.mark.slow, pytest.mark.enable_socket, pytest.mark.allow_hosts(["127.0.0.1"])]


def start_server(source_dir: Path, model_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, str(source_dir / "serve.py"), "--model-dir", str(model_dir), "--host", "127.0.0.1",
         "--port", "0"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 1.0)
        if ready:
            line = proc.stdout.readline()
            match = re.search(r"serving on http://127\.0\.0\.1:(\d+)", line)
            if match:
                return proc, int(match.group(1))
            if not line and proc.poll() is not None:
                break
    proc.kill()
    raise AssertionError(f"serve.py did not start: {proc.stderr.read() if proc.stderr else ''}")


def call(port: int, method: str, path: str, body: bytes | str | None = None, **headers: str) -> tuple[int, Any, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
    response = conn.getresponse()
    raw = response.read().decode()
    content_type = response.getheader("Content-Type", "")
    conn.close()
    return response.status, (json.loads(raw) if content_type == "application/json" else raw), content_type


@pytest.fixture(scope="module")
def test_frame(datasets: dict[str, Path]) -> pd.DataFrame:
    return pd.read_parquet(datasets["breast_cancer"] / "test")


@pytest.fixture(scope="module")
def server(
    breast_cancer_run: TrainingRun, source_dir: Path, tmp_path_factory: pytest.TempPathFactory, job_env: Any
) -> Iterator[int]:
    """The extracted archive served as a SageMaker endpoint would: its code/ is the handler."""
    endpoint_model = tmp_path_factory.mktemp("endpoint") / "model"
    shutil.copytree(breast_cancer_run.model_dir, endpoint_model)
    env = job_env({"LEPTON_MODEL_VERSION": "7", "LEPTON_MODEL_SHA256": "ab" * 32})
    proc, port = start_server(source_dir, endpoint_model, env)
    yield port
    proc.terminate()
    assert proc.wait(timeout=20) == 0  # SIGTERM shuts the server down cleanly


def test_ping(server: int) -> None:
    assert call(server, "GET", "/ping")[0] == 200


def test_json_instances_and_records_agree(
    server: int, test_frame: pd.DataFrame, breast_cancer_run: TrainingRun
) -> None:
    features = test_frame.drop(columns="target")
    status, by_rows, content_type = call(
        server, "POST", "/invocations", json.dumps({"instances": features.to_numpy().tolist()}),
        Content_Type="application/json",
    )  # fmt: skip
    assert status == 200 and content_type == "application/json"
    status, by_records, _ = call(
        server, "POST", "/invocations", json.dumps(features.to_dict(orient="records")),
        Content_Type="application/json; charset=utf-8", Accept="application/json",
    )  # fmt: skip
    assert status == 200
    assert by_rows["predictions"] == by_records["predictions"]
    assert len(by_rows["predictions"]) == len(test_frame)
    assert set(by_rows["predictions"]) <= {0, 1} and by_rows["classes"] == [0, 1]
    assert all(abs(sum(p) - 1) < 1e-6 and len(p) == 2 for p in by_rows["probabilities"])
    accuracy = sum(p == t for p, t in zip(by_rows["predictions"], test_frame["target"], strict=True)) / len(test_frame)
    assert accuracy > 0.9
    assert by_rows["model"] == {
        "sha256": "ab" * 32,
        "content_sha256": archive.content_sha256(breast_cancer_run.model_dir),
        "version": "7",
    }


def test_csv_in_and_out(server: int, test_frame: pd.DataFrame) -> None:
    rows = test_frame.drop(columns="target").head(3)
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in rows.to_numpy()) + "\n"
    status, answer, content_type = call(server, "POST", "/invocations", body, Content_Type="text/csv")
    assert status == 200 and len(answer["predictions"]) == 3
    status, text, content_type = call(server, "POST", "/invocations", body, Content_Type="text/csv", Accept="text/csv")
    assert status == 200 and content_type == "text/csv"
    lines = text.strip().splitlines()
    assert len(lines) == 3
    for line, prediction, proba in zip(lines, answer["predictions"], answer["probabilities"], strict=True):
        cells = line.split(",")
        assert int(cells[0]) == prediction
        assert [float(c) for c in cells[1:]] == pytest.approx(proba)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        ('{"instances": [[1, 2, 3]]}', "application/json", 400, "row 0 has 3 values; the model expects 30 features"),
        ('[{"mean radius": 1, "colour": "red"}]', "application/json", 400, "unknown feature 'colour' in row 0"),
        ('[{"mean radius": 14.0}]', "application/json", 400, "missing feature 'mean texture' in row 0"),
        ("{not json", "application/json", 400, "not valid JSON"),
        ('{"rows": []}', "application/json", 400, '"instances"'),
        ('{"instances": []}', "application/json", 400, "no rows"),
        ("1,2,3", "text/csv", 400, "row 0 has 3 values"),
        ("x", "image/png", 415, "content type 'image/png' is not supported"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem(
    server: int, body: str, content_type: str, status: int, says: str
) -> None:
    got, answer, response_type = call(server, "POST", "/invocations", body, Content_Type=content_type)
    assert got == status and response_type == "application/json"
    assert says in answer["error"]


def test_non_numeric_value_names_the_feature_and_row(server: int, test_frame: pd.DataFrame) -> None:
    rows = test_frame.drop(columns="target").head(2).to_numpy().tolist()
    rows[1][4] = "abc"
    status, answer, _ = call(server, "POST", "/invocations", json.dumps({"instances": rows}))
    assert status == 400
    assert answer == {
        "error": "non-numeric value 'abc' for numeric feature 'mean smoothness' in row 1",
        "field": "mean smoothness",
        "row": 1,
    }


def test_unsupported_accept_and_unknown_routes(server: int, test_frame: pd.DataFrame) -> None:
    body = json.dumps({"instances": test_frame.drop(columns="target").head(1).to_numpy().tolist()})
    status, answer, _ = call(server, "POST", "/invocations", body, Accept="image/png")
    assert status == 406 and "accept application/json or text/csv" in answer["error"]
    assert call(server, "GET", "/nope")[0] == 404
    assert call(server, "POST", "/ping", "{}")[0] == 404


def test_an_oversized_body_is_refused_before_it_is_read(server: int) -> None:
    with socket.create_connection(("127.0.0.1", server), timeout=30) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 6291457\r\n\r\n")  # fmt: skip
        received = b""
        while chunk := sock.recv(4096):  # the server answers, then closes the connection
            received += chunk
    answer = received.decode()
    assert answer.startswith("HTTP/1.1 413") and "exceeds 6291456 bytes" in answer


def test_a_tampered_archive_is_refused_at_start(
    breast_cancer_run: TrainingRun, source_dir: Path, tmp_path: Path, job_env: Any
) -> None:
    model = tmp_path / "model"
    shutil.copytree(breast_cancer_run.model_dir, model)
    (model / "code" / "lepton_ml" / "extra.py").write_text("print('not shipped')\n")
    result = subprocess.run(
        [sys.executable, str(source_dir / "serve.py"), "--model-dir", str(model), "--port", "0"],
        env=job_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "code/lepton_ml/extra.py is not listed in checksums.json" in result.stderr


# -- inference.py in process -------------------------------------------------------------------------
def test_model_fn_checks_the_registered_sha256(
    breast_cancer_tarball: Path, breast_cancer_run: TrainingRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    import inference

    monkeypatch.setenv("LEPTON_MODEL_SHA256", "0" * 64)
    with pytest.raises(ArchiveError, match="LEPTON_MODEL_SHA256"):
        inference.model_fn(str(breast_cancer_tarball.parent))
    monkeypatch.setenv("LEPTON_MODEL_SHA256", archive.sha256_file(breast_cancer_tarball))
    assert inference.model_fn(str(breast_cancer_tarball)).archive_sha256 == archive.sha256_file(breast_cancer_tarball)
    monkeypatch.delenv("LEPTON_MODEL_SHA256")
    monkeypatch.setenv("LEPTON_MODEL_CONTENT_SHA256", "1" * 64)
    with pytest.raises(ArchiveError, match="LEPTON_MODEL_CONTENT_SHA256"):
        inference.model_fn(str(breast_cancer_run.model_dir))


def test_request_errors_are_toolkit_errors_with_a_status() -> None:
    import inference

    assert inference.input_fn("1.5,,red\n\n2,3,\n", "text/csv") == [["1.5", None, "red"], ["2", "3", None]]
    with pytest.raises(RequestError) as caught:
        inference.input_fn(b"\xff\xfe", "application/json")
    assert caught.value.status_code == 400 and json.loads(caught.value.message) == {
        "error": "the body is not UTF-8 text"
    }
    with pytest.raises(RequestError) as caught:
        inference.input_fn("[]", "application/x-npy")
    assert caught.value.status_code == 415


def test_serving_code_needs_neither_pandas_nor_sklearn_nor_pydantic(
    breast_cancer_run: TrainingRun, test_frame: pd.DataFrame, job_env: Any
) -> None:
    """The inference containers may lack them: the archive's code/ imports torch and numpy only."""
    row = test_frame.drop(columns="target").head(1).to_numpy().tolist()
    script = f"""
import sys
for name in ("pandas", "pyarrow", "sklearn", "pydantic", "matplotlib", "scipy"):
    sys.modules[name] = None
sys.path.insert(0, {str(breast_cancer_run.model_dir / "code")!r})
import inference
model = inference.model_fn({str(breast_cancer_run.model_dir)!r})
body, kind = inference.output_fn(inference.predict_fn(inference.input_fn({json.dumps({"instances": row})!r},
                                 "application/json"), model), "text/csv")
print(kind, body.strip())
"""
    result = subprocess.run([sys.executable, "-c", script], env=job_env(), capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr
    kind, line = result.stdout.strip().split(" ", 1)
    assert kind == "text/csv" and line.split(",")[0] in {"0", "1"}
