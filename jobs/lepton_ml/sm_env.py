"""The SageMaker training container contract: where things are, read from the environment.

Every /opt/ml path has an environment override with the name the SageMaker training toolkit
uses, so a local runner can relocate the whole tree under a sandbox directory:

    SM_MODEL_DIR            /opt/ml/model
    SM_OUTPUT_DATA_DIR      /opt/ml/output/data
    SM_OUTPUT_DIR           /opt/ml/output          (the failure file is <SM_OUTPUT_DIR>/failure)
    SM_INPUT_CONFIG_DIR     /opt/ml/input/config    (hyperparameters.json)
    SM_CHANNEL_<NAME>       /opt/ml/input/data/<name>
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lepton_ml.errors import JobFailure

OPT_ML = Path("/opt/ml")
# hyperparameters that SageMaker itself adds: the SDK's sagemaker_* and tuning's _tuning_objective_metric
RESERVED_PREFIXES = ("sagemaker_", "_")


@dataclass(frozen=True)
class TrainingEnvironment:
    model_dir: Path
    output_data_dir: Path
    output_dir: Path
    input_config_dir: Path
    environ: Mapping[str, str]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> TrainingEnvironment:
        env = dict(os.environ if environ is None else environ)
        output_dir = Path(env.get("SM_OUTPUT_DIR", str(OPT_ML / "output")))
        return cls(
            model_dir=Path(env.get("SM_MODEL_DIR", str(OPT_ML / "model"))),
            output_data_dir=Path(env.get("SM_OUTPUT_DATA_DIR", str(output_dir / "data"))),
            output_dir=output_dir,
            input_config_dir=Path(env.get("SM_INPUT_CONFIG_DIR", str(OPT_ML / "input" / "config"))),
            environ=env,
        )

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @property
    def job_name(self) -> str | None:
        name = self.environ.get("TRAINING_JOB_NAME")
        if name:
            return name
        try:
            return json.loads(self.environ.get("SM_TRAINING_ENV", "{}")).get("job_name") or None
        except (ValueError, AttributeError):
            return None

    def channel(self, name: str) -> Path:
        """The directory of input channel ``name``; fails naming the channel when it is absent."""
        var = f"SM_CHANNEL_{name.upper()}"
        value = self.environ.get(var)
        path = Path(value) if value else OPT_ML / "input" / "data" / name
        if not path.is_dir():
            where = f"{var}={value}" if value else f"{var} is not set and {path}"
            raise JobFailure(
                f"Missing input channel '{name}': {where} is not a directory. "
                f"The training job needs the channels train, validation and stats (see docs/contracts.md)."
            )
        return path


def _decode(value: object) -> str:
    """hyperparameters.json values are strings, often JSON-encoded by the SageMaker SDK ('"64,32"', '10')."""
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        return decoded if isinstance(decoded, str) else value
    return json.dumps(value) if isinstance(value, list | dict | bool) or value is None else str(value)


def parse_cli_hyperparameters(argv: Sequence[str]) -> dict[str, str]:
    """``--name value`` and ``--name=value`` pairs, as SageMaker passes hyperparameters to the script."""
    result: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or len(arg) == 2:
            raise JobFailure(f"Unexpected command-line argument '{arg}': hyperparameters are passed as --name value.")
        name = arg[2:]
        if "=" in name:
            name, value = name.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(argv):
                raise JobFailure(f"Hyperparameter '{name}' has no value: pass it as --{name} <value>.")
            value = argv[i + 1]
            i += 2
        result[name.replace("-", "_")] = value
    return result


def collect_hyperparameters(argv: Sequence[str], input_config_dir: Path) -> dict[str, str]:
    """Hyperparameters from hyperparameters.json overlaid with the command line (which wins).

    Names SageMaker reserves (``sagemaker_*``, ``_tuning_objective_metric``) are dropped.
    """
    merged: dict[str, str] = {}
    path = input_config_dir / "hyperparameters.json"
    if path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise JobFailure(f"{path} is not valid JSON: {exc}") from exc
        if not isinstance(raw, dict):
            raise JobFailure(f"{path} must hold a JSON object of name -> value.")
        merged.update({str(k): _decode(v) for k, v in raw.items()})
    merged.update(parse_cli_hyperparameters(argv))
    return {k: v for k, v in merged.items() if not k.startswith(RESERVED_PREFIXES)}
