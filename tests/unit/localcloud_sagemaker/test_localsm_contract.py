"""The training container contract: arguments, hyperparameters, SM_* variables, /opt/ml relocation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localcloud.sagemaker.contract import (
    ContractError,
    OptMl,
    TrainingContainer,
    decode_hyperparameters,
    entry_point_command,
    script_mode,
    to_cmd_args,
)


def test_hyperparameters_are_json_decoded_where_they_can_be() -> None:
    decoded = decode_hyperparameters({"epochs": "10", "lr": "0.001", "name": '"adam"', "raw": "adam", "flag": "true"})
    assert decoded == {"epochs": 10, "lr": 0.001, "name": "adam", "raw": "adam", "flag": True}


def test_command_line_arguments_follow_the_training_toolkit() -> None:
    args = to_cmd_args({"x": 1, "learning_rate": 0.5, "hidden_sizes": "64,32", "flag": True, "cfg": {"b": 2, "a": 1}})
    assert args == [
        "--cfg",
        "a=1,b=2",
        "--flag",
        "True",
        "--hidden_sizes",
        "64,32",
        "--learning_rate",
        "0.5",
        "-x",
        "1",
    ]


def test_script_mode_needs_the_program_and_the_source_directory() -> None:
    mode = script_mode(
        {
            "sagemaker_program": "train.py",
            "sagemaker_submit_directory": "s3://b/src.tar.gz",
            "sagemaker_region": "x",
            "e": 1,
        }
    )
    assert (mode.program, mode.module_name, mode.user_hyperparameters) == ("train.py", "train", {"e": 1})
    with pytest.raises(ContractError, match="'sagemaker_program'"):
        script_mode({"sagemaker_submit_directory": "s3://b/src.tar.gz"})
    with pytest.raises(ContractError, match="'sagemaker_submit_directory'"):
        script_mode({"sagemaker_program": "train.py"})


def test_entry_point_commands() -> None:
    assert entry_point_command("/py", "train.py", ["--a", "1"]) == ["/py", "train.py", "--a", "1"]
    assert entry_point_command("/py", "run.sh", []) == ["/bin/sh", "run.sh"]
    with pytest.raises(ContractError, match="neither a Python"):
        entry_point_command("/py", "train", [])


def test_opt_ml_paths_are_relocated_under_the_sandbox(tmp_path: Path) -> None:
    layout = OptMl.create(tmp_path)
    root = str(tmp_path / "opt" / "ml")
    assert layout.relocate("/opt/ml/processing/input") == f"{root}/processing/input"
    assert layout.relocate("/opt/ml") == root
    assert layout.relocate("/opt/mlx/a") == "/opt/mlx/a"
    assert layout.relocate("relative/opt/ml/a") == "relative/opt/ml/a"
    assert layout.relocate_word("--model-dir=/opt/ml/processing/model") == f"--model-dir={root}/processing/model"
    assert layout.relocate_word("--epochs=3") == "--epochs=3"
    assert layout.model.is_dir() and layout.input_config.is_dir() and layout.output_data.is_dir()


def test_training_container_environment(tmp_path: Path) -> None:
    layout = OptMl.create(tmp_path)
    raw = {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": '"s3://b/s.tgz"', "epochs": "3"}
    container = TrainingContainer(
        layout=layout,
        job_name="job-1",
        job_arn="arn:aws:sagemaker:us-east-1:123456789012:training-job/job-1",
        region="eu-west-1",
        raw_hyperparameters=raw,
        script=script_mode(decode_hyperparameters(raw)),
        channels=[
            {"ChannelName": "train", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/t"}}, "ContentType": "text/csv"},
            {"ChannelName": "stats", "DataSource": {"S3DataSource": {"S3Uri": "s3://b/s.json"}}},
        ],
        resource_config={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1},
        environment={"MY_VAR": "1", "SM_LOG_LEVEL": "10"},
        python="/venv/bin/python",
    )
    env = container.env()
    assert env["SM_CHANNEL_TRAIN"] == str(layout.channel("train"))
    assert env["SM_CHANNEL_STATS"] == str(layout.channel("stats"))
    assert json.loads(env["SM_CHANNELS"]) == ["stats", "train"]
    assert json.loads(env["SM_HPS"]) == {"epochs": 3}
    assert env["SM_HP_EPOCHS"] == "3"
    assert env["SM_CURRENT_INSTANCE_TYPE"] == "ml.g5.xlarge"
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["PYTHONPATH"] == str(layout.code)
    assert env["MY_VAR"] == "1" and env["SM_LOG_LEVEL"] == "10", "the job's Environment wins"
    training_env = json.loads(env["SM_TRAINING_ENV"])
    assert training_env["channel_input_dirs"]["train"] == str(layout.channel("train"))
    assert training_env["hyperparameters"] == {"epochs": 3}
    assert container.command() == ["/venv/bin/python", "train.py", "--epochs", "3"]

    container.write_config_files()
    config = layout.input_config
    assert json.loads((config / "hyperparameters.json").read_text()) == raw
    assert json.loads((config / "inputdataconfig.json").read_text())["train"] == {
        "TrainingInputMode": "File",
        "S3DistributionType": "FullyReplicated",
        "RecordWrapperType": "None",
        "ContentType": "text/csv",
    }
    assert json.loads((config / "resourceconfig.json").read_text())["hosts"] == ["algo-1"]
