"""Exceptions shared by the job entry points and the inference handler.

Nothing here imports torch, pandas or pydantic: the inference path imports this module too.
"""

from __future__ import annotations

import json
from typing import Any


class JobFailure(Exception):
    """A job cannot go on; ``reason`` is what a person reads as the job's FailureReason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ArchiveError(JobFailure):
    """A model archive is missing files, holds unexpected files or fails its checksums."""


try:  # inside the SageMaker inference containers: errors the toolkit turns into HTTP statuses
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError
except ImportError:  # pragma: no cover - depends on the image

    class _ToolkitError(Exception):  # type: ignore[no-redef]
        """Same constructor and attributes as sagemaker_inference.errors.BaseInferenceToolkitError."""

        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            super().__init__(status_code, message, phrase)
            self.status_code = status_code
            self.message = message
            self.phrase = phrase


class RequestError(_ToolkitError):
    """A client error in an inference request: answered with ``status_code`` and a JSON body.

    It extends the SageMaker inference toolkit's BaseInferenceToolkitError when that package is
    installed, so the AWS PyTorch inference containers answer with the same status code.
    """

    def __init__(self, message: str, *, status_code: int = 400, field: str | None = None, row: int | None = None):
        body: dict[str, Any] = {"error": message}
        if field is not None:
            body["field"] = field
        if row is not None:
            body["row"] = row
        self.body = body
        phrase = {400: "Bad Request", 406: "Not Acceptable", 413: "Payload Too Large", 415: "Unsupported Media Type"}
        super().__init__(status_code, json.dumps(body), phrase.get(status_code, "Bad Request"))
        self.detail = message
        self.field = field
        self.row = row

    def __str__(self) -> str:
        return self.detail
