"""cli/images.py: the PyTorch DLC image URIs, resolved offline from the SageMaker SDK's tables."""

from __future__ import annotations

import json

import pytest

from cli import images

# The network is blocked for the whole module: resolution must work offline. (urllib3 probes for
# IPv6 support by opening a socket when the SDK imports it, and carries on when that is refused.)
pytestmark = [
    pytest.mark.disable_socket,
    pytest.mark.filterwarnings("ignore:A test tried to use socket.socket:UserWarning"),
]


@pytest.mark.parametrize(
    ("scope", "region", "instance_type", "torch_version", "py_version", "expected"),
    [
        ("training", "us-east-1", "ml.m5.xlarge", "2.6", "py312",
         "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6-cpu-py312"),
        ("training", "us-east-1", "ml.g5.xlarge", "2.6", "py312",
         "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6-gpu-py312"),
        ("inference", "eu-west-1", "ml.m5.large", "2.6", "py312",
         "763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:2.6-cpu-py312"),
        ("inference", "us-east-1", "ml.p3.2xlarge", "2.5", "py311",
         "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.5-gpu-py311"),
        ("training", "cn-north-1", "ml.m5.xlarge", "2.6", "py312",
         "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/pytorch-training:2.6-cpu-py312"),
    ],
)  # fmt: skip
def test_known_uris(
    scope: images.Scope, region: str, instance_type: str, torch_version: str, py_version: str, expected: str
) -> None:
    uri = images.image_uri(scope, region, instance_type, torch_version=torch_version, py_version=py_version)
    assert uri == expected


def test_defaults_pair_a_training_and_an_inference_image_of_the_same_torch() -> None:
    pair = images.resolve_images("us-west-2", training_instance_type="ml.g5.2xlarge")
    assert pair.training.endswith("/pytorch-training:2.6-gpu-py312")
    assert pair.inference.endswith("/pytorch-inference:2.6-cpu-py312")
    assert pair.as_parameters() == {"TrainingImageUri": pair.training, "InferenceImageUri": pair.inference}


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"torch_version": "9.9"}, "torch_version='9.9'"),
        ({"py_version": "py27"}, "Unsupported Python version: py27"),
        ({"region": "xx-nowhere-1"}, "Unsupported region: xx-nowhere-1"),
        ({"instance_type": "m5.xlarge"}, "instance_type must be a SageMaker instance type"),
    ],
)
def test_unsupported_requests_are_named(kwargs: dict[str, str], says: str) -> None:
    args = {"region": "us-east-1", "instance_type": "ml.m5.xlarge", **kwargs}
    with pytest.raises(images.ImageResolutionError) as caught:
        images.image_uri("training", args.pop("region"), args.pop("instance_type"), **args)
    assert says in str(caught.value)


def test_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert images.main(["--region", "us-east-1", "--inference-instance-type", "ml.g4dn.xlarge"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["inference"].endswith("pytorch-inference:2.6-gpu-py312")
    with pytest.raises(SystemExit) as exit_info:
        images.main(["--region", "us-east-1", "--torch-version", "0.1"])
    assert exit_info.value.code == 2
