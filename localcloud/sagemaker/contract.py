"""SageMaker's container contract, relocated under a per-job sandbox.

Training follows the SageMaker training toolkit's script mode: the `sagemaker_program` and
`sagemaker_submit_directory` hyperparameters name the entry point and its sourcedir.tar.gz, the other
hyperparameters become `--name value` arguments, and the SM_* variables describe the container. Every
`/opt/ml` path lives under `<sandbox>/opt/ml`, since nothing here may write /opt/ml.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

OPT_ML = "/opt/ml"
CURRENT_HOST = "algo-1"

# Variables of the machine a job process inherits (everything else is the container's own).
_INHERITED_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "TZ",
    "SYSTEMROOT",
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
)

SCRIPT_MODE_KEYS = frozenset(
    {
        "sagemaker_program",
        "sagemaker_submit_directory",
        "sagemaker_region",
        "sagemaker_container_log_level",
        "sagemaker_job_name",
        "sagemaker_enable_cloudwatch_metrics",
        "sagemaker_distributed_dataparallel_enabled",
        "sagemaker_instance_type",
    }
)


class ContractError(Exception):
    """The job's request cannot be run under the container contract; the message is the FailureReason."""


@dataclass(frozen=True)
class OptMl:
    """The /opt/ml tree of one job, relocated under its sandbox."""

    root: Path  # <sandbox>/opt/ml

    @classmethod
    def create(cls, sandbox: Path) -> OptMl:
        layout = cls(sandbox / "opt" / "ml")
        for path in (layout.code, layout.model, layout.input_config, layout.input_data, layout.output_data):
            path.mkdir(parents=True, exist_ok=True)
        layout.output_intermediate.mkdir(parents=True, exist_ok=True)
        return layout

    def relocate(self, container_path: str) -> str:
        """Map a container path under /opt/ml to the sandbox; other paths are returned unchanged."""
        if container_path == OPT_ML or container_path.startswith(OPT_ML + "/"):
            return str(self.root) + container_path[len(OPT_ML) :]
        return container_path

    def relocate_word(self, word: str) -> str:
        """Relocate an argument that is a path (`/opt/ml/x`) or an option with one (`--dir=/opt/ml/x`)."""
        if "=" in word and not word.startswith(OPT_ML):
            name, _, value = word.partition("=")
            return f"{name}={self.relocate(value)}"
        return self.relocate(word)

    @property
    def code(self) -> Path:
        return self.root / "code"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def input(self) -> Path:
        return self.root / "input"

    @property
    def input_config(self) -> Path:
        return self.root / "input" / "config"

    @property
    def input_data(self) -> Path:
        return self.root / "input" / "data"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def output_data(self) -> Path:
        return self.root / "output" / "data"

    @property
    def output_intermediate(self) -> Path:
        return self.root / "output" / "intermediate"

    @property
    def failure_file(self) -> Path:
        return self.root / "output" / "failure"

    @property
    def message_file(self) -> Path:
        return self.root / "output" / "message"

    def channel(self, name: str) -> Path:
        return self.input_data / name


def decode_hyperparameters(raw: Mapping[str, str] | None) -> dict[str, Any]:
    """Hyperparameter values are strings in the API; the toolkit decodes each as JSON where it can."""
    decoded: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        try:
            decoded[key] = json.loads(value)
        except (TypeError, ValueError):
            decoded[key] = value
    return decoded


def _arg_value(value: Any) -> str:
    if isinstance(value, Mapping):
        return ",".join(f"{k}={v}" for k, v in sorted(value.items()))
    return str(value)


def to_cmd_args(user_hyperparameters: Mapping[str, Any]) -> list[str]:
    """`--name value` pairs, names sorted, as the toolkit's mapping.to_cmd_args builds them."""
    args: list[str] = []
    for key in sorted(user_hyperparameters):
        args += [f"--{key}" if len(key) > 1 else f"-{key}", _arg_value(user_hyperparameters[key])]
    return args


@dataclass(frozen=True)
class ScriptMode:
    program: str
    submit_directory: str
    user_hyperparameters: dict[str, Any]

    @property
    def module_name(self) -> str:
        return self.program[:-3] if self.program.endswith(".py") else self.program


def script_mode(hyperparameters: Mapping[str, Any]) -> ScriptMode:
    program = hyperparameters.get("sagemaker_program")
    submit = hyperparameters.get("sagemaker_submit_directory")
    if not program or not isinstance(program, str):
        raise ContractError(
            "ClientError: the hyperparameter 'sagemaker_program' (the entry point script, e.g. \"train.py\") is "
            "required to run a training job locally in script mode"
        )
    if not submit or not isinstance(submit, str):
        raise ContractError(
            "ClientError: the hyperparameter 'sagemaker_submit_directory' (the s3:// URI of the entry point's "
            "sourcedir.tar.gz) is required to run a training job locally: the code is not inside the image here"
        )
    user = {k: v for k, v in hyperparameters.items() if k not in SCRIPT_MODE_KEYS}
    return ScriptMode(program=program, submit_directory=submit, user_hyperparameters=user)


def entry_point_command(python: str, program: str, args: Sequence[str]) -> list[str]:
    """The command the toolkit runs for an entry point: a Python script or a shell script."""
    if program.endswith(".py"):
        return [python, program, *args]
    if program.endswith(".sh"):
        return ["/bin/sh", program, *args]
    raise ContractError(
        f"ClientError: the entry point '{program}' is neither a Python (.py) nor a shell (.sh) script; "
        "localcloud runs only those"
    )


@cache
def num_gpus() -> int:
    """GPUs visible here, counted as the toolkit does (nvidia-smi --list-gpus)."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        output = subprocess.run(
            ["nvidia-smi", "--list-gpus"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in output.splitlines() if line.startswith("GPU "))


def base_environment(region: str) -> dict[str, str]:
    env = {name: os.environ[name] for name in _INHERITED_ENV if name in os.environ}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
        }
    )
    return env


@dataclass(frozen=True)
class TrainingContainer:
    """Everything the training container sees: files written, environment and command."""

    layout: OptMl
    job_name: str
    job_arn: str
    region: str
    raw_hyperparameters: Mapping[str, str]
    script: ScriptMode
    channels: Sequence[Mapping[str, Any]]
    resource_config: Mapping[str, Any]
    environment: Mapping[str, str]
    python: str

    def write_config_files(self) -> None:
        config = self.layout.input_config
        (config / "hyperparameters.json").write_text(json.dumps(dict(self.raw_hyperparameters)))
        (config / "resourceconfig.json").write_text(json.dumps(self.resource_config_json()))
        (config / "inputdataconfig.json").write_text(json.dumps(self.input_data_config_json()))

    def resource_config_json(self) -> dict[str, Any]:
        instance_type = str(self.resource_config.get("InstanceType", "local"))
        return {
            "current_host": CURRENT_HOST,
            "current_instance_type": instance_type,
            "current_group_name": "homogeneousCluster",
            "hosts": [CURRENT_HOST],
            "instance_groups": [
                {"instance_group_name": "homogeneousCluster", "instance_type": instance_type, "hosts": [CURRENT_HOST]}
            ],
            "network_interface_name": "eth0",
        }

    def input_data_config_json(self) -> dict[str, Any]:
        config: dict[str, Any] = {}
        for channel in self.channels:
            s3 = channel.get("DataSource", {}).get("S3DataSource", {})
            entry = {
                "TrainingInputMode": channel.get("InputMode", "File"),
                "S3DistributionType": s3.get("S3DataDistributionType", "FullyReplicated"),
                "RecordWrapperType": channel.get("RecordWrapperType", "None"),
            }
            if channel.get("ContentType"):
                entry["ContentType"] = channel["ContentType"]
            config[channel["ChannelName"]] = entry
        return config

    def args(self) -> list[str]:
        return to_cmd_args(self.script.user_hyperparameters)

    def command(self) -> list[str]:
        return entry_point_command(self.python, self.script.program, self.args())

    def env(self) -> dict[str, str]:
        layout = self.layout
        names = [c["ChannelName"] for c in self.channels]
        hps = self.script.user_hyperparameters
        cpus = os.cpu_count() or 1
        training_env: dict[str, Any] = {
            "additional_framework_parameters": {},
            "channel_input_dirs": {name: str(layout.channel(name)) for name in names},
            "current_host": CURRENT_HOST,
            "current_instance_type": self.resource_config_json()["current_instance_type"],
            "framework_module": "sagemaker_pytorch_container.training:main",
            "hosts": [CURRENT_HOST],
            "hyperparameters": hps,
            "input_config_dir": str(layout.input_config),
            "input_data_config": self.input_data_config_json(),
            "input_dir": str(layout.input),
            "is_master": True,
            "job_name": self.job_name,
            "log_level": 20,
            "master_hostname": CURRENT_HOST,
            "model_dir": str(layout.model),
            "module_dir": self.script.submit_directory,
            "module_name": self.script.module_name,
            "network_interface_name": "eth0",
            "num_cpus": cpus,
            "num_gpus": num_gpus(),
            "output_data_dir": str(layout.output_data),
            "output_dir": str(layout.output),
            "output_intermediate_dir": str(layout.output_intermediate),
            "resource_config": self.resource_config_json(),
            "user_entry_point": self.script.program,
        }
        env = base_environment(self.region)
        env.update(
            {
                "TRAINING_JOB_NAME": self.job_name,
                "TRAINING_JOB_ARN": self.job_arn,
                "SAGEMAKER_BASE_DIR": str(layout.root),
                "PYTHONPATH": str(layout.code),
                "SM_HOSTS": json.dumps([CURRENT_HOST]),
                "SM_CURRENT_HOST": CURRENT_HOST,
                "SM_NETWORK_INTERFACE_NAME": "eth0",
                "SM_CURRENT_INSTANCE_TYPE": training_env["current_instance_type"],
                "SM_IS_MASTER": "true",
                "SM_MASTER_ADDR": CURRENT_HOST,
                "SM_HPS": json.dumps(hps),
                "SM_RESOURCE_CONFIG": json.dumps(training_env["resource_config"]),
                "SM_INPUT_DATA_CONFIG": json.dumps(training_env["input_data_config"]),
                "SM_CHANNELS": json.dumps(sorted(names)),
                "SM_MODEL_DIR": str(layout.model),
                "SM_INPUT_DIR": str(layout.input),
                "SM_INPUT_CONFIG_DIR": str(layout.input_config),
                "SM_OUTPUT_DIR": str(layout.output),
                "SM_OUTPUT_DATA_DIR": str(layout.output_data),
                "SM_OUTPUT_INTERMEDIATE_DIR": str(layout.output_intermediate),
                "SM_NUM_CPUS": str(cpus),
                "SM_NUM_GPUS": str(training_env["num_gpus"]),
                "SM_NUM_NEURONS": "0",
                "SM_LOG_LEVEL": "20",
                "SM_FRAMEWORK_MODULE": training_env["framework_module"],
                "SM_FRAMEWORK_PARAMS": "{}",
                "SM_MODULE_NAME": self.script.module_name,
                "SM_MODULE_DIR": self.script.submit_directory,
                "SM_USER_ENTRY_POINT": self.script.program,
                "SM_USER_ARGS": json.dumps(self.args()),
                "SM_TRAINING_ENV": json.dumps(training_env),
            }
        )
        for name in names:
            env[f"SM_CHANNEL_{name.upper()}"] = str(layout.channel(name))
        for key, value in hps.items():
            env[f"SM_HP_{key.upper()}"] = value if isinstance(value, str) else json.dumps(value)
        env.update(self.environment)
        return env
