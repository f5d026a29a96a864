"""Which container images localcloud can run, and with what.

The one place that maps a SageMaker image URI to a local runtime. Only the AWS PyTorch deep learning
containers are runnable: their training toolkit contract (script mode) is what localcloud emulates,
and the interpreter running localcloud has torch, so it stands in for the container's Python.
Anything else (a custom ECR image, a built-in algorithm) fails the job with a clear reason.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from typing import Literal

Purpose = Literal["training", "processing", "serving"]

# <account>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>:<framework version>-<cpu|gpu>-py3<minor>[-...]
_DLC_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[a-z0-9-]+):(?P<version>\d+\.\d+(?:\.\d+)?)-(?P<processor>cpu|gpu)-(?P<python>py3\d*)(?:-\S*)?$"
)

# Which DLC repositories may run for which purpose. The PyTorch processors of the SageMaker SDK
# (FrameworkProcessor, PyTorchProcessor) run processing jobs in the training image.
_RUNNABLE_REPOSITORIES: dict[Purpose, frozenset[str]] = {
    "training": frozenset({"pytorch-training"}),
    "processing": frozenset({"pytorch-training"}),
    "serving": frozenset({"pytorch-inference"}),
}

PYTHON_ENV_VAR = "LOCALCLOUD_SAGEMAKER_PYTHON"


class ImageNotRunnableError(Exception):
    """The image cannot run on this machine; the message is the job's FailureReason."""


@dataclass(frozen=True)
class LocalRuntime:
    """How a runnable image is run here."""

    image_uri: str
    python: str
    framework: str
    framework_version: str
    processor: str
    python_version: str


def resolve(image_uri: str, purpose: Purpose) -> LocalRuntime:
    """The local runtime for ``image_uri`` used for ``purpose``, or ImageNotRunnableError saying why not."""
    match = _DLC_URI.match(image_uri or "")
    allowed = sorted(_RUNNABLE_REPOSITORIES[purpose])
    if match is None or match["repository"] not in _RUNNABLE_REPOSITORIES[purpose]:
        raise ImageNotRunnableError(
            f"The image '{image_uri}' is not runnable locally: localcloud runs {purpose} jobs only in the AWS "
            f"PyTorch deep learning containers ({', '.join(allowed)}, e.g. "
            f"763104351884.dkr.ecr.us-east-1.amazonaws.com/{allowed[0]}:2.5-cpu-py311), "
            "resolved with sagemaker.core.image_uris.retrieve('pytorch', ...)."
        )
    return LocalRuntime(
        image_uri=image_uri,
        python=os.environ.get(PYTHON_ENV_VAR) or sys.executable,
        framework="pytorch",
        framework_version=match["version"],
        processor=match["processor"],
        python_version=match["python"],
    )


def is_python_command(word: str) -> bool:
    """Whether a container entrypoint word names the container's Python interpreter."""
    return re.fullmatch(r"(?:/usr(?:/local)?/bin/|/opt/conda/bin/)?python(?:3(?:\.\d+)?)?", word) is not None
