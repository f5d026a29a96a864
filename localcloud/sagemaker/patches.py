"""The narrow seams in moto 5.2.5 (pinned) that make its SageMaker run jobs.

- SageMakerResponse: Create/Stop of training, processing and tuning jobs go to localcloud's runners;
  StopTrainingJob, StopHyperParameterTuningJob and ListTrainingJobsForHyperParameterTuningJob,
  missing from moto, are added.
- SageMakerModelBackend.describe_*: a consistent snapshot while a job thread updates the job.
- The Step Functions interpreter's service factory: "sagemaker" gets a real integration.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult, EmptyResult
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_factory

from .common import STATE_LOCK
from .processing import ProcessingJobs
from .stepfunctions import StateTaskServiceSageMaker, operation_model
from .training import TrainingJobs
from .tuning import TuningJobs

_PATCHED_ATTRIBUTE = "__localcloud_sagemaker__"


class Services:
    """The job services that the patched moto methods call."""

    def __init__(self, training: TrainingJobs, processing: ProcessingJobs, tuning: TuningJobs) -> None:
        self.training = training
        self.processing = processing
        self.tuning = tuning


class _Installed:
    services: Services | None = None


def services() -> Services:
    if _Installed.services is None:
        raise RuntimeError("localcloud.sagemaker.install() has not been called")
    return _Installed.services


def _validated_params(response: SageMakerResponse, action: str) -> dict[str, Any]:
    """The request parameters, checked against SageMaker's API model as the service does."""
    from botocore.validate import ParamValidator

    params: dict[str, Any] = copy.deepcopy(response._get_params())
    report = ParamValidator().validate(params, operation_model(action).input_shape)
    if report.has_errors():
        raise ValidationError(report.generate_report())
    return params


# -- SageMakerResponse methods ------------------------------------------------------------------
def _create_training_job(self: SageMakerResponse) -> ActionResult:
    job = services().training.create(self.sagemaker_backend, _validated_params(self, "create_training_job"))
    return ActionResult({"TrainingJobArn": job.arn})


def _stop_training_job(self: SageMakerResponse) -> EmptyResult:
    services().training.stop(self.sagemaker_backend, self._get_param("TrainingJobName"))
    return EmptyResult()


def _create_processing_job(self: SageMakerResponse) -> ActionResult:
    job = services().processing.create(self.sagemaker_backend, _validated_params(self, "create_processing_job"))
    return ActionResult({"ProcessingJobArn": job.arn})


def _stop_processing_job(self: SageMakerResponse) -> EmptyResult:
    services().processing.stop(self.sagemaker_backend, self._get_param("ProcessingJobName"))
    return EmptyResult()


def _create_hyper_parameter_tuning_job(self: SageMakerResponse) -> ActionResult:
    params = _validated_params(self, "create_hyper_parameter_tuning_job")
    job = services().tuning.create(self.sagemaker_backend, params)
    return ActionResult({"HyperParameterTuningJobArn": job.arn})


def _stop_hyper_parameter_tuning_job(self: SageMakerResponse) -> EmptyResult:
    services().tuning.stop(self.sagemaker_backend, self._get_param("HyperParameterTuningJobName"))
    return EmptyResult()


def _list_training_jobs_for_hyper_parameter_tuning_job(self: SageMakerResponse) -> ActionResult:
    params = self._get_params()
    result = services().tuning.list_training_jobs(
        self.sagemaker_backend, params.get("HyperParameterTuningJobName", ""), params
    )
    return ActionResult(result)


RESPONSE_METHODS: dict[str, Callable[..., Any]] = {
    "create_training_job": _create_training_job,
    "stop_training_job": _stop_training_job,
    "create_processing_job": _create_processing_job,
    "stop_processing_job": _stop_processing_job,
    "create_hyper_parameter_tuning_job": _create_hyper_parameter_tuning_job,
    "stop_hyper_parameter_tuning_job": _stop_hyper_parameter_tuning_job,
    "list_training_jobs_for_hyper_parameter_tuning_job": _list_training_jobs_for_hyper_parameter_tuning_job,
}

SNAPSHOT_METHODS = (
    "describe_training_job",
    "describe_processing_job",
    "describe_hyper_parameter_tuning_job",
    "list_training_jobs",
    "list_processing_jobs",
    "list_hyper_parameter_tuning_jobs",
)


def _snapshot(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with STATE_LOCK:
            return copy.deepcopy(method(*args, **kwargs))

    setattr(wrapper, _PATCHED_ATTRIBUTE, True)
    return wrapper


def _state_task_service_for(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def factory(service_name: str) -> Any:
        if service_name == "sagemaker":
            return StateTaskServiceSageMaker()
        return original(service_name)

    setattr(factory, _PATCHED_ATTRIBUTE, True)
    return factory


def apply(new_services: Services) -> None:
    """Install the seams (idempotent); a later call replaces the services they call."""
    _Installed.services = new_services
    for name, method in RESPONSE_METHODS.items():
        setattr(SageMakerResponse, name, method)
    for name in SNAPSHOT_METHODS:
        current = getattr(SageMakerModelBackend, name)
        if not getattr(current, _PATCHED_ATTRIBUTE, False):
            setattr(SageMakerModelBackend, name, _snapshot(current))
    for module in (state_task_service_factory, state_task_factory):
        current = module.state_task_service_for
        if not getattr(current, _PATCHED_ATTRIBUTE, False):
            module.state_task_service_for = _state_task_service_for(current)  # type: ignore[attr-defined]
