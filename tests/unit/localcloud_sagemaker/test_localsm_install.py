"""install() patches moto once, however often it is called."""

from __future__ import annotations

from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_factory

from localcloud import sagemaker as local_sagemaker
from localcloud.sagemaker import patches
from localcloud.sagemaker.stepfunctions import StateTaskServiceSageMaker


def test_install_is_idempotent_and_patches_the_seams() -> None:
    local_sagemaker.install()
    describe = SageMakerModelBackend.describe_training_job
    factory = state_task_factory.state_task_service_for
    local_sagemaker.install()
    local_sagemaker.install()

    assert local_sagemaker.installed()
    assert SageMakerModelBackend.describe_training_job is describe, "wrapped once, not once per call"
    assert state_task_factory.state_task_service_for is factory
    assert state_task_service_factory.state_task_service_for.__wrapped__.__module__.startswith("moto.")  # type: ignore[attr-defined]
    for name, method in patches.RESPONSE_METHODS.items():
        assert getattr(SageMakerResponse, name) is method
    assert isinstance(factory("sagemaker"), StateTaskServiceSageMaker)
    assert type(factory("sqs")).__name__ == "StateTaskServiceSqs"
