"""Which images run locally: the AWS PyTorch deep learning containers, nothing else."""

from __future__ import annotations

import sys

import pytest

from localcloud.sagemaker.images import ImageNotRunnableError, is_python_command, resolve


@pytest.mark.parametrize(
    "uri",
    [
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5.1-cpu-py311-ubuntu22.04-sagemaker",
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-training:2.3-gpu-py311",
        "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/pytorch-training:2.1.0-cpu-py310",
    ],
)
def test_pytorch_training_images_run_with_the_local_python(uri: str) -> None:
    runtime = resolve(uri, "training")
    assert runtime.python == sys.executable
    assert runtime.framework == "pytorch"
    assert resolve(uri, "processing").image_uri == uri


@pytest.mark.parametrize(
    ("uri", "purpose"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/my-trainer:latest", "training"),
        ("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1", "training"),
        ("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-cpu-py311", "training"),
        ("763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.5-cpu-py311", "serving"),
        ("", "training"),
    ],
)
def test_other_images_are_not_runnable_and_say_why(uri: str, purpose: str) -> None:
    with pytest.raises(ImageNotRunnableError, match="is not runnable locally") as error:
        resolve(uri, purpose)  # type: ignore[arg-type]
    assert f"'{uri}'" in str(error.value)


def test_python_entrypoint_words() -> None:
    assert all(
        is_python_command(w) for w in ["python", "python3", "python3.11", "/usr/bin/python3", "/opt/conda/bin/python"]
    )
    assert not any(is_python_command(w) for w in ["pythonista", "/opt/ml/code/python", "bash"])
