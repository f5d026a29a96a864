"""The `sagemaker` optimised integration for moto's Step Functions interpreter.

moto's interpreter (ported from LocalStack) lists "sagemaker" as unsupported: a `.sync` SageMaker task
fails as States.Runtime, which a Catch on States.ALL does not catch on AWS. This integration calls the
SageMaker API, polls the Describe call of a `.sync` task until the job ends, and fails with the error
names AWS Step Functions uses:

- a job that ends Failed or Stopped: `States.TaskFailed`, the Describe output as the cause;
- an error answered by the SageMaker API: `SageMaker.<Java SDK exception name>`, e.g.
  `SageMaker.AmazonSageMakerException` for a ValidationException and
  `SageMaker.ResourceInUseException` for a duplicate job name.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import threading
import time
from collections.abc import Callable
from typing import Any, Final

import botocore.session
from botocore import xform_name
from botocore.exceptions import ClientError, ParamValidationError
from botocore.validate import ParamValidator
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.state.exec.state_task.credentials import StateCredentials
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
    ResourceCondition,
    ResourceRuntimePart,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback,
)
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

SERVICE_NAME: Final = "sagemaker"

# boto action -> (describe action, name parameter, ARN field of the create response, status field)
SYNC_JOBS: Final[dict[str, tuple[str, str, str]]] = {
    "create_training_job": ("describe_training_job", "TrainingJobName", "TrainingJobStatus"),
    "create_processing_job": ("describe_processing_job", "ProcessingJobName", "ProcessingJobStatus"),
    "create_hyper_parameter_tuning_job": (
        "describe_hyper_parameter_tuning_job",
        "HyperParameterTuningJobName",
        "HyperParameterTuningJobStatus",
    ),
    "create_transform_job": ("describe_transform_job", "TransformJobName", "TransformJobStatus"),
}
STOP_ACTIONS: Final[dict[str, str]] = {
    "create_training_job": "stop_training_job",
    "create_processing_job": "stop_processing_job",
    "create_hyper_parameter_tuning_job": "stop_hyper_parameter_tuning_job",
    "create_transform_job": "stop_transform_job",
}
REQUEST_RESPONSE_ACTIONS: Final[frozenset[str]] = frozenset(
    {
        *SYNC_JOBS,
        "create_model",
        "create_endpoint_config",
        "create_endpoint",
        "update_endpoint",
        "describe_training_job",
        "describe_processing_job",
        "describe_hyper_parameter_tuning_job",
        "describe_transform_job",
        "describe_model",
        "describe_endpoint_config",
        "describe_endpoint",
    }
)
FAILED_STATUSES: Final = frozenset({"Failed", "Stopped"})
DONE_STATUSES: Final = frozenset({"Completed", "Failed", "Stopped"})

# SageMaker error codes -> the exception class names of the Java SDK that Step Functions reports.
# SageMaker models no ValidationException, so the SDK raises its base AmazonSageMakerException.
JAVA_EXCEPTIONS: Final[dict[str, str]] = {
    "ResourceInUse": "ResourceInUseException",
    "ResourceLimitExceeded": "ResourceLimitExceededException",
    "ResourceNotFound": "ResourceNotFoundException",
    "ConflictException": "ConflictException",
}

POLL_INTERVAL_SECONDS = 0.1


@functools.cache
def _service_model() -> Any:
    return botocore.session.get_session().get_service_model(SERVICE_NAME)


def operation_model(boto_action: str) -> Any:
    """The botocore operation model of a snake_case action, e.g. create_training_job."""
    model = _service_model()
    for name in model.operation_names:
        if xform_name(name) == boto_action:
            return model.operation_model(name)
    raise KeyError(boto_action)


def error_name_for(code: str) -> str:
    return f"SageMaker.{JAVA_EXCEPTIONS.get(code, 'AmazonSageMakerException')}"


def to_sfn_json(value: Any) -> Any:
    """Describe outputs as Step Functions returns them: timestamps as epoch milliseconds."""
    if isinstance(value, datetime.datetime):
        stamp = value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)
        return int(stamp.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: to_sfn_json(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [to_sfn_json(v) for v in value]
    return value


class StateTaskServiceSageMaker(StateTaskServiceCallback):
    def __init__(self) -> None:
        # AWS supports request-response and .sync for SageMaker. WaitForTaskToken is listed only because
        # moto 5.2.5's StateTaskServiceCallback._eval_integration_pattern calls interrupt_all() on the
        # callback endpoint it creates only for services that list it (a .sync without it fails with
        # AttributeError); _get_supported_parameters still rejects a .waitForTaskToken resource.
        super().__init__(
            supported_integration_patterns={
                ResourceCondition(ResourceCondition.Sync),
                ResourceCondition(ResourceCondition.WaitForTaskToken),
            }
        )

    # -- validation -----------------------------------------------------------------------------
    def _get_supported_parameters(self) -> set[str] | None:
        action = self._get_boto_service_action()
        if action not in REQUEST_RESPONSE_ACTIONS:
            return None
        if self.resource.condition == ResourceCondition.Sync and action not in SYNC_JOBS:
            return None
        if self.resource.condition not in (None, ResourceCondition.Sync):
            return None
        shape = self._operation_model(action).input_shape
        return set(shape.members) if shape is not None else set()

    @staticmethod
    def _operation_model(action: str) -> Any:
        return operation_model(action)

    def _normalise_parameters(
        self,
        parameters: dict,
        boto_service_name: str | None = None,
        service_action_name: str | None = None,
    ) -> None:
        shape = self._operation_model(self._get_boto_service_action()).input_shape
        if shape is not None:
            self._to_boto_request(parameters, shape)

    # -- errors ---------------------------------------------------------------------------------
    def _failure(self, env: Environment, error: str, cause: str) -> FailureEvent:
        task_failed = StatesErrorNameType.StatesTaskFailed
        return FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=task_failed) if error == task_failed.to_name() else CustomErrorName(error),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(  # type: ignore[typeddict-item]
                taskFailedEventDetails=TaskFailedEventDetails(
                    error=error,
                    cause=cause,
                    resource=self._get_sfn_resource(),
                    resourceType=self._get_sfn_resource_type(),
                )
            ),
        )

    def _from_error(self, env: Environment, ex: Exception) -> FailureEvent:
        if isinstance(ex, ClientError):
            code = ex.response.get("Error", {}).get("Code", "Unknown")
            meta = ex.response.get("ResponseMetadata", {})
            cause = (
                f"{ex.response.get('Error', {}).get('Message', str(ex))} (Service: AmazonSageMaker; "
                f"Status Code: {meta.get('HTTPStatusCode', 400)}; Error Code: {code}; "
                f"Request ID: {meta.get('RequestId', '')}; Proxy: null)"
            )
            return self._failure(env, error_name_for(code), cause)
        if isinstance(ex, ParamValidationError):
            cause = (
                f"{ex} (Service: AmazonSageMaker; Status Code: 400; Error Code: ValidationException; "
                "Request ID: ; Proxy: null)"
            )
            return self._failure(env, error_name_for("ValidationException"), cause)
        return super()._from_error(env=env, ex=ex)

    # -- request-response -----------------------------------------------------------------------
    def _client(self, resource_runtime_part: ResourceRuntimePart, credentials: StateCredentials) -> Any:
        return boto_client_for(service=SERVICE_NAME, region=resource_runtime_part.region, state_credentials=credentials)

    def _eval_service_task(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict,
        state_credentials: StateCredentials,
    ) -> None:
        action = self._get_boto_service_action()
        # The interpreter's clients skip botocore's validation; SageMaker would answer a ValidationException.
        operation = self._operation_model(action)
        report = ParamValidator().validate(normalised_parameters, operation.input_shape)
        if report.has_errors():
            raise ParamValidationError(report=report.generate_report())
        client = self._client(resource_runtime_part, state_credentials)
        response = getattr(client, action)(**normalised_parameters) or {}
        env.stack.append(to_sfn_json(response))

    # -- .sync ----------------------------------------------------------------------------------
    def _build_sync_resolver(
        self,
        env: Environment,
        resource_runtime_part: ResourceRuntimePart,
        normalised_parameters: dict,
        state_credentials: StateCredentials,
    ) -> Callable[[], Any] | None:
        env.stack.pop()  # the Create* output: the task's result is the Describe output
        action = self._get_boto_service_action()
        return _SyncJob(
            service=self,
            env=env,
            client=self._client(resource_runtime_part, state_credentials),
            action=action,
            name=normalised_parameters[SYNC_JOBS[action][1]],
        )

    def _eval_sync(
        self,
        env: Environment,
        sync_resolver: Callable[[], Any] | None,
        timeout_seconds: int | None,
        callback_endpoint: Any,
        heartbeat_endpoint: Any,
    ) -> Any:
        assert isinstance(sync_resolver, _SyncJob)
        while env.is_running():
            result = sync_resolver()
            if result:
                return result
            time.sleep(POLL_INTERVAL_SECONDS)
        # The execution was stopped or timed out while the job ran: as on AWS, the job is stopped.
        sync_resolver.stop_quietly()
        return None


class _SyncJob:
    """Polls one job's Describe call; the result of a `.sync` task."""

    def __init__(
        self, service: StateTaskServiceSageMaker, env: Environment, client: Any, action: str, name: str
    ) -> None:
        self.service = service
        self.env = env
        self.client = client
        self.action = action
        self.describe_action, self.name_field, self.status_field = SYNC_JOBS[action]
        self.name = name

    def __call__(self) -> Any | None:
        description = to_sfn_json(getattr(self.client, self.describe_action)(**{self.name_field: self.name}))
        status = description.get(self.status_field)
        if status not in DONE_STATUSES:
            return None
        if status in FAILED_STATUSES:
            raise FailureEventException(
                self.service._failure(
                    self.env,
                    StatesErrorNameType.StatesTaskFailed.to_name(),
                    json.dumps(description, separators=(",", ":")),
                )
            )
        return description

    def stop_quietly(self) -> None:
        def stop() -> None:
            with contextlib.suppress(ClientError):  # it had finished
                getattr(self.client, STOP_ACTIONS[self.action])(**{self.name_field: self.name})

        threading.Thread(target=stop, daemon=True).start()
