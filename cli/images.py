"""Deploy-time resolution of the AWS PyTorch deep learning container images for the SageMaker jobs.

The training and processing jobs (jobs/train.py, evaluate.py, compress.py) run in the
pytorch-training image; endpoints (jobs/inference.py) in the pytorch-inference image. The SageMaker
SDK knows the registry account per region, the CPU/GPU (and Graviton) variant per instance type
and the supported framework/Python pairs, offline, from the JSON files it ships.

Never imported by a Lambda: importing the SDK alone takes seconds. Usage at deploy time:

    python -m cli.images --region eu-west-1 --training-instance-type ml.g5.xlarge
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from typing import Literal

# The newest release with both a training and an inference image in the SDK's tables; the same
# torch serialises model.pt at training and loads it at serving.
DEFAULT_TORCH_VERSION = "2.6"
DEFAULT_PY_VERSION = "py312"
DEFAULT_TRAINING_INSTANCE_TYPE = "ml.m5.xlarge"
DEFAULT_INFERENCE_INSTANCE_TYPE = "ml.m5.large"

Scope = Literal["training", "inference"]


class ImageResolutionError(ValueError):
    """No image matches the request; the message names the argument and what is supported."""


@dataclass(frozen=True)
class JobImages:
    training: str
    inference: str

    def as_parameters(self) -> dict[str, str]:
        """As template parameter overrides (sam deploy --parameter-overrides)."""
        return {"TrainingImageUri": self.training, "InferenceImageUri": self.inference}


def image_uri(
    scope: Scope,
    region: str,
    instance_type: str,
    *,
    torch_version: str = DEFAULT_TORCH_VERSION,
    py_version: str = DEFAULT_PY_VERSION,
) -> str:
    """The ECR URI of the PyTorch ``scope`` image for ``instance_type`` (GPU types get the GPU build)."""
    if scope not in ("training", "inference"):
        raise ImageResolutionError(f"scope must be 'training' or 'inference', got {scope!r}")
    if not instance_type.startswith("ml."):
        raise ImageResolutionError(
            f"instance_type must be a SageMaker instance type like ml.m5.xlarge, got {instance_type!r}"
        )
    from sagemaker.core import image_uris

    try:
        return str(
            image_uris.retrieve(
                framework="pytorch",
                region=region,
                version=torch_version,
                py_version=py_version,
                instance_type=instance_type,
                image_scope=scope,
            )
        )
    except ValueError as exc:
        raise ImageResolutionError(
            f"no PyTorch {scope} image for region={region!r}, torch_version={torch_version!r}, "
            f"py_version={py_version!r}, instance_type={instance_type!r}: {exc}"
        ) from exc


def training_image_uri(region: str, instance_type: str = DEFAULT_TRAINING_INSTANCE_TYPE, **versions: str) -> str:
    return image_uri("training", region, instance_type, **versions)


def inference_image_uri(region: str, instance_type: str = DEFAULT_INFERENCE_INSTANCE_TYPE, **versions: str) -> str:
    return image_uri("inference", region, instance_type, **versions)


def resolve_images(
    region: str,
    *,
    training_instance_type: str = DEFAULT_TRAINING_INSTANCE_TYPE,
    inference_instance_type: str = DEFAULT_INFERENCE_INSTANCE_TYPE,
    torch_version: str = DEFAULT_TORCH_VERSION,
    py_version: str = DEFAULT_PY_VERSION,
) -> JobImages:
    """Both images, for one torch and Python version."""
    return JobImages(
        training=image_uri("training", region, training_instance_type, torch_version=torch_version,
                           py_version=py_version),
        inference=image_uri("inference", region, inference_instance_type, torch_version=torch_version,
                            py_version=py_version),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cli.images", description=__doc__.split("\n\n")[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--training-instance-type", default=DEFAULT_TRAINING_INSTANCE_TYPE)
    parser.add_argument("--inference-instance-type", default=DEFAULT_INFERENCE_INSTANCE_TYPE)
    parser.add_argument("--torch-version", default=DEFAULT_TORCH_VERSION)
    parser.add_argument("--py-version", default=DEFAULT_PY_VERSION)
    args = parser.parse_args(argv)
    try:
        images = resolve_images(
            args.region,
            training_instance_type=args.training_instance_type,
            inference_instance_type=args.inference_instance_type,
            torch_version=args.torch_version,
            py_version=args.py_version,
        )
    except ImageResolutionError as exc:
        parser.exit(2, f"error: {exc}\n")
    print(json.dumps(asdict(images)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
