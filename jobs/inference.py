"""SageMaker PyTorch serving entry point: model_fn, input_fn, predict_fn, output_fn.

The AWS PyTorch inference containers import this module from /opt/ml/model/code (the archive's
code/ folder, with code/lepton_ml beside it); serve.py hosts it the same way locally.

Requests:  application/json  {"instances": [[v1, v2, ...], ...]}  or  [{"feature": value, ...}, ...]
           text/csv          rows of feature values in preprocessing.json order, no header
Responses: application/json  {"predictions": [...], "probabilities": [[...]], "classes": [...],
                              "model": {"sha256", "content_sha256", "version"}}
           text/csv          one line per row: prediction, then the class probabilities
Client mistakes raise RequestError: HTTP 4xx with a JSON body naming the problem.

Environment (set in CreateModel's Environment by the deployment, all optional):
    LEPTON_MODEL_SHA256          sha256 of model.tar.gz as registered; checked when the tarball is at hand
    LEPTON_MODEL_CONTENT_SHA256  sha256 of checksums.json as registered; always checked when set
    LEPTON_MODEL_VERSION         reported in every response
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from lepton_ml import archive
from lepton_ml.errors import ArchiveError, RequestError
from lepton_ml.predictor import Predictor

JSON = "application/json"
CSV = "text/csv"


def model_fn(model_dir: str) -> Predictor:
    """Loads the archive in ``model_dir`` (extracted, or holding model.tar.gz) after checking it."""
    path = Path(model_dir)
    expected_archive = os.environ.get("LEPTON_MODEL_SHA256") or None
    expected_content = os.environ.get("LEPTON_MODEL_CONTENT_SHA256") or None
    extracted, tarball = archive.locate(path)
    archive_sha = archive.sha256_file(tarball) if tarball is not None else None
    if expected_archive and archive_sha and archive_sha != expected_archive:
        raise ArchiveError(
            f"Refusing the model: {tarball} has sha256 {archive_sha}, but LEPTON_MODEL_SHA256 is {expected_archive}."
        )
    predictor = Predictor.load(extracted, archive_sha256=archive_sha or expected_archive)
    if expected_content and predictor.content_sha256 != expected_content:
        raise ArchiveError(
            f"Refusing the model: its content sha256 is {predictor.content_sha256}, "
            f"but LEPTON_MODEL_CONTENT_SHA256 is {expected_content}."
        )
    return predictor


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _parse_json(text: str) -> list[Any]:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise RequestError(f"the body is not valid JSON: {exc}") from None
    if isinstance(doc, dict):
        if "instances" not in doc:
            raise RequestError('a JSON object body must hold "instances": a list of rows', field="instances")
        doc = doc["instances"]
    if not isinstance(doc, list):
        raise RequestError('"instances" must be a list of rows', field="instances")
    return doc


def _parse_csv(text: str) -> list[Any]:
    rows = [row for row in csv.reader(io.StringIO(text)) if row and any(cell.strip() for cell in row)]
    return [[cell.strip() if cell.strip() else None for cell in row] for row in rows]


def input_fn(request_body: str | bytes | bytearray, request_content_type: str | None) -> list[Any]:
    """Parses the body into rows; the rows are checked against the model's features in predict_fn."""
    media = _media_type(request_content_type) or JSON
    if isinstance(request_body, bytes | bytearray):
        try:
            request_body = bytes(request_body).decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError("the body is not UTF-8 text") from None
    if media == JSON:
        return _parse_json(request_body)
    if media == CSV:
        return _parse_csv(request_body)
    raise RequestError(f"content type {request_content_type!r} is not supported: send {JSON} or {CSV}", status_code=415)


def predict_fn(input_data: list[Any], model: Predictor) -> dict[str, Any]:
    """Validates and encodes the rows, predicts, and returns the JSON-ready response document."""
    prediction = model.predict_rows(input_data)
    result: dict[str, Any] = {"predictions": model.labels(prediction)}
    if prediction.probabilities is not None:
        result["probabilities"] = prediction.probabilities.round(8).tolist()
        result["classes"] = list(model.preprocessor.classes)
    result["model"] = model.model_info(os.environ.get("LEPTON_MODEL_VERSION") or None)
    return result


def _accepted(accept: str | None) -> str:
    for part in (accept or "").split(","):
        media = _media_type(part)
        if media in ("", "*/*", JSON, "application/*"):
            return JSON
        if media in (CSV, "text/*"):
            return CSV
    raise RequestError(f"cannot answer with {accept!r}: accept {JSON} or {CSV}", status_code=406)


def output_fn(prediction: dict[str, Any], accept: str | None) -> tuple[str, str]:
    """Serialises predict_fn's document as JSON, or as CSV lines (prediction, probabilities...)."""
    media = _accepted(accept)
    if media == JSON:
        return json.dumps(prediction, allow_nan=False), JSON
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    probabilities = prediction.get("probabilities")
    for i, label in enumerate(prediction["predictions"]):
        writer.writerow([label, *(probabilities[i] if probabilities is not None else [])])
    return buffer.getvalue(), CSV
