"""Domain exceptions. Domain code raises these; one place (the API's exception handlers) maps them
to HTTP status codes. Anything else reaching a caller is a bug."""

from __future__ import annotations

from typing import Any


class LeptonError(Exception):
    """Base of every domain error. `code` is stable and machine-readable."""

    code = "error"
    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class ValidationFailed(LeptonError):
    code = "validation_failed"
    status = 400


class NotFound(LeptonError):
    code = "not_found"
    status = 404


class ProjectNotFound(NotFound):
    code = "project_not_found"


class VersionNotFound(NotFound):
    code = "version_not_found"


class DatasetNotFound(NotFound):
    code = "dataset_not_found"


class AliasNotFound(NotFound):
    code = "alias_not_found"


class Forbidden(LeptonError):
    code = "forbidden"
    status = 403


class Conflict(LeptonError):
    code = "conflict"
    status = 409


class AlreadyExists(Conflict):
    code = "already_exists"


class IllegalTransition(Conflict):
    code = "illegal_transition"


class ConcurrentModification(Conflict):
    code = "concurrent_modification"


class ExecutionNotStarted(LeptonError):
    """The run is recorded but Step Functions did not start its execution (throttled or
    unavailable): starting it again (POST .../runs/<run_id>/start) is safe."""

    code = "execution_not_started"
    status = 503


class ExecutionNotStopped(LeptonError):
    """The run is recorded STOPPED but Step Functions did not stop its execution (throttled or
    unavailable): asking again (POST .../runs/<run_id>/stop) stops it."""

    code = "execution_not_stopped"
    status = 503


class IntegrityError(LeptonError):
    """An artifact's checksum does not match what the registry recorded."""

    code = "integrity_error"
    status = 422


class ProjectExists(AlreadyExists):
    code = "project_exists"


class RunNotFound(NotFound):
    code = "run_not_found"


class AliasReserved(Conflict):
    """The alias is moved only by promote/revert (production, previous)."""

    code = "alias_reserved"


class LastAdmin(Conflict):
    """The change would leave a project without an admin."""

    code = "last_admin"


class ConfigurationError(LeptonError):
    """The function's environment is wrong: a deployment bug, answered as a 500."""

    code = "configuration_error"
    status = 500
