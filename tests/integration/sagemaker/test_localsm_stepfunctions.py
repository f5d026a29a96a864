"""Step Functions `sagemaker` integrations on moto's interpreter: `.sync` waits, failures carry AWS's names."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aws_kit import channel, wait_until
from botocore.exceptions import ClientError
from smlocal_helpers import (
    BEST_MODEL,
    BUCKET,
    IMAGE,
    ROLE,
    SFN_ROLE,
    Aws,
    algorithm,
    catching,
    pipeline,
    script_hyperparameters,
    train_task,
)


def run(aws: Aws, definition: dict[str, Any], payload: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    name = f"sm-{uuid.uuid4().hex[:8]}"
    machine = aws.sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=SFN_ROLE)
    arn = aws.sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=name, input=json.dumps(payload))[
        "executionArn"
    ]

    def finished() -> dict[str, Any] | None:
        execution: dict[str, Any] = aws.sfn.describe_execution(executionArn=arn)
        return execution if execution["status"] != "RUNNING" else None

    execution: dict[str, Any] = wait_until(finished, timeout)
    execution["history"] = aws.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    return execution


def test_sync_train_state_waits_for_the_job_and_returns_its_description(aws: Aws) -> None:
    execution = run(
        aws,
        pipeline(train_task(Catch=catching(["States.ALL"]))),
        {"job_name": "sfn-train-ok", "hyperparameters": script_hyperparameters(epochs=2)},
    )

    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["outcome"] == "TRAINED", output.get("error")
    train = output["train"]
    assert train["TrainingJobName"] == "sfn-train-ok"
    assert train["TrainingJobStatus"] == "Completed"
    assert train["ModelArtifacts"]["S3ModelArtifacts"] == f"s3://{BUCKET}/pipeline/sfn-train-ok/output/model.tar.gz"
    assert {m["MetricName"] for m in train["FinalMetricDataList"]} >= {"validation:loss", "train:loss"}
    # Timestamps come back as epoch milliseconds, as Step Functions returns them.
    assert isinstance(train["TrainingEndTime"], int) and train["TrainingEndTime"] > 1_600_000_000_000
    types = [e["type"] for e in execution["history"]]
    assert "TaskSubmitted" in types and "TaskSucceeded" in types
    assert aws.keys("pipeline/sfn-train-ok/") == [
        "pipeline/sfn-train-ok/output/model.tar.gz",
        "pipeline/sfn-train-ok/output/output.tar.gz",
    ]


def test_a_failed_job_is_caught_as_states_task_failed_with_the_description_as_cause(aws: Aws) -> None:
    execution = run(
        aws,
        pipeline(train_task(Catch=catching(["States.TaskFailed"]))),
        {"job_name": "sfn-train-bad", "hyperparameters": script_hyperparameters(learning_rate=-1)},
    )

    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["outcome"] == "FAILED"
    assert output["error"]["Error"] == "States.TaskFailed"
    cause = json.loads(output["error"]["Cause"])
    assert cause["TrainingJobName"] == "sfn-train-bad"
    assert cause["TrainingJobStatus"] == "Failed"
    assert cause["FailureReason"] == "AlgorithmError: Bad hyperparameter learning_rate: it must be > 0, got -1.0"


def test_an_api_error_is_caught_as_sagemaker_amazon_sagemaker_exception(aws: Aws) -> None:
    task = train_task(Catch=catching(["SageMaker.AmazonSageMakerException"]))
    task["Parameters"]["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "loss", "Regex": "loss=\\S+"}]
    execution = run(aws, pipeline(task), {"job_name": "sfn-bad-request", "hyperparameters": {}})

    assert execution["status"] == "SUCCEEDED", execution
    error = json.loads(execution["output"])["error"]
    assert error["Error"] == "SageMaker.AmazonSageMakerException"
    assert "must have a capture group" in error["Cause"]
    assert "Service: AmazonSageMaker; Status Code: 400; Error Code: ValidationException" in error["Cause"]


def test_uncaught_errors_fail_the_execution_with_sagemaker_names_never_states_runtime(aws: Aws) -> None:
    aws.sagemaker.create_training_job(
        TrainingJobName="sfn-dup",
        AlgorithmSpecification=algorithm(),
        RoleArn=ROLE,
        HyperParameters=script_hyperparameters(epochs=1),
        InputDataConfig=[channel("train", f"s3://{BUCKET}/datasets/ds-1/train/")],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/pipeline"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )
    duplicate = run(aws, pipeline(train_task()), {"job_name": "sfn-dup", "hyperparameters": {}})
    missing_role = train_task()
    del missing_role["Parameters"]["RoleArn"]
    invalid = run(aws, pipeline(missing_role), {"job_name": "sfn-no-role", "hyperparameters": {}})

    assert duplicate["status"] == "FAILED"
    assert duplicate["error"] == "SageMaker.ResourceInUseException"
    assert "Error Code: ResourceInUse" in duplicate["cause"]
    assert invalid["status"] == "FAILED"
    assert invalid["error"] == "SageMaker.AmazonSageMakerException"
    assert "RoleArn" in invalid["cause"]


def test_sync_tuning_then_sync_processing_then_create_model(aws: Aws) -> None:
    definition = {
        "StartAt": "Tune",
        "States": {
            "Tune": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createHyperParameterTuningJob.sync",
                "Parameters": {
                    "HyperParameterTuningJobName.$": "$.tuning_name",
                    "HyperParameterTuningJobConfig": {
                        "Strategy": "Random",
                        "RandomSeed": 3,
                        "HyperParameterTuningJobObjective": {"Type": "Minimize", "MetricName": "validation:loss"},
                        "ResourceLimits": {"MaxNumberOfTrainingJobs": 2, "MaxParallelTrainingJobs": 2},
                        "ParameterRanges": {
                            "ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1"}]
                        },
                    },
                    "TrainingJobDefinition": {
                        "StaticHyperParameters": script_hyperparameters(epochs=1),
                        "AlgorithmSpecification": algorithm(),
                        "RoleArn": ROLE,
                        "InputDataConfig": [channel("train", f"s3://{BUCKET}/datasets/ds-1/train/")],
                        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/pipeline"},
                        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
                        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
                    },
                },
                "ResultSelector": {
                    "best.$": "$.BestTrainingJob.TrainingJobName",
                    "status.$": "$.HyperParameterTuningJobStatus",
                },
                "ResultPath": "$.tune",
                "Next": "Evaluate",
            },
            "Evaluate": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createProcessingJob.sync",
                "Parameters": {
                    "ProcessingJobName.$": "States.Format('{}-eval', $.tuning_name)",
                    "RoleArn": ROLE,
                    "AppSpecification": {
                        "ImageUri": IMAGE,
                        "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/toy_process.py"],
                        "ContainerArguments": [
                            "--input-dir",
                            "/opt/ml/processing/model",
                            "--output-dir",
                            "/opt/ml/processing/out",
                        ],
                    },
                    "ProcessingInputs": [
                        {
                            "InputName": "code",
                            "S3Input": {
                                "S3Uri": f"s3://{BUCKET}/code/process/toy_process.py",
                                "LocalPath": "/opt/ml/processing/input/code",
                                "S3DataType": "S3Prefix",
                                "S3InputMode": "File",
                            },
                        },
                        {
                            "InputName": "model",
                            "S3Input": {
                                "S3Uri.$": BEST_MODEL,
                                "LocalPath": "/opt/ml/processing/model",
                                "S3DataType": "S3Prefix",
                                "S3InputMode": "File",
                            },
                        },
                    ],
                    "ProcessingOutputConfig": {
                        "Outputs": [
                            {
                                "OutputName": "evaluation",
                                "S3Output": {
                                    "S3Uri": f"s3://{BUCKET}/pipeline/evaluation",
                                    "LocalPath": "/opt/ml/processing/out",
                                    "S3UploadMode": "EndOfJob",
                                },
                            }
                        ]
                    },
                    "ProcessingResources": {
                        "ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5}
                    },
                },
                "ResultSelector": {"status.$": "$.ProcessingJobStatus"},
                "ResultPath": "$.evaluate",
                "Next": "CreateModel",
            },
            "CreateModel": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createModel",
                "Parameters": {
                    "ModelName.$": "$.tune.best",
                    "ExecutionRoleArn": ROLE,
                    "PrimaryContainer": {
                        "Image": IMAGE.replace("pytorch-training", "pytorch-inference"),
                        "ModelDataUrl.$": BEST_MODEL,
                    },
                },
                "ResultPath": "$.model",
                "End": True,
            },
        },
    }
    execution = run(aws, definition, {"tuning_name": "sfn-tune"}, timeout=90)

    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["tune"]["status"] == "Completed"
    assert output["tune"]["best"].startswith("sfn-tune-00")
    assert output["evaluate"] == {"status": "Completed"}
    assert output["model"]["ModelArn"].endswith(f":model/{output['tune']['best']}")
    summary = json.loads(aws.get("pipeline/evaluation/summary.json"))
    assert summary["files"] == ["model.tar.gz"]


def test_stopping_the_execution_stops_the_running_job(aws: Aws) -> None:
    definition = pipeline(train_task())
    machine = aws.sfn.create_state_machine(
        name=f"sm-abort-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=SFN_ROLE
    )
    payload = {"job_name": "sfn-abort", "hyperparameters": script_hyperparameters(mode="sleep", sleep=30)}
    arn = aws.sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="abort", input=json.dumps(payload))[
        "executionArn"
    ]
    wait_until(
        lambda: (
            aws.sagemaker.list_training_jobs(NameContains="sfn-abort")["TrainingJobSummaries"]
            and aws.sagemaker.describe_training_job(TrainingJobName="sfn-abort")["SecondaryStatus"] == "Training"
        )
    )
    aws.sfn.stop_execution(executionArn=arn)

    job = wait_until(
        lambda: (
            (d := aws.sagemaker.describe_training_job(TrainingJobName="sfn-abort"))["TrainingJobStatus"] == "Stopped"
            and d
        ),
        timeout=60,
    )
    assert job["SecondaryStatus"] == "Stopped"
    # moto alone (this module runs without LocalCloud's execution patch) records ABORTED once its
    # interpreter has unwound, which on a busy machine came after the job's stop
    assert wait_until(lambda: aws.sfn.describe_execution(executionArn=arn)["status"] != "RUNNING", timeout=30)
    assert aws.sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"


def test_request_response_model_and_endpoint_config_calls(aws: Aws) -> None:
    serving_image = IMAGE.replace("pytorch-training", "pytorch-inference")
    definition = {
        "StartAt": "CreateModel",
        "States": {
            "CreateModel": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createModel",
                "Parameters": {
                    "ModelName": "m-1",
                    "ExecutionRoleArn": ROLE,
                    "PrimaryContainer": {"Image": serving_image, "ModelDataUrl": f"s3://{BUCKET}/m/model.tar.gz"},
                },
                "ResultPath": "$.model",
                "Next": "CreateEndpointConfig",
            },
            "CreateEndpointConfig": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:createEndpointConfig",
                "Parameters": {
                    "EndpointConfigName": "ec-1",
                    "ProductionVariants": [
                        {
                            "VariantName": "blue",
                            "ModelName": "m-1",
                            "InitialInstanceCount": 1,
                            "InstanceType": "ml.m5.large",
                        }
                    ],
                },
                "ResultPath": "$.config",
                "Next": "Describe",
            },
            "Describe": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sagemaker:describeEndpointConfig",
                "Parameters": {"EndpointConfigName": "ec-1"},
                "ResultSelector": {"variants.$": "$.ProductionVariants[*].VariantName", "created.$": "$.CreationTime"},
                "ResultPath": "$.described",
                "End": True,
            },
        },
    }
    execution = run(aws, definition, {})
    assert execution["status"] == "SUCCEEDED", execution
    output = json.loads(execution["output"])
    assert output["model"]["ModelArn"].endswith(":model/m-1")
    assert output["config"]["EndpointConfigArn"].endswith(":endpoint-config/ec-1")
    assert output["described"]["variants"] == ["blue"]
    assert isinstance(output["described"]["created"], int)


def test_wait_for_task_token_is_not_a_sagemaker_integration_pattern(aws: Aws) -> None:
    task = train_task("arn:aws:states:::sagemaker:createTrainingJob.waitForTaskToken")
    with pytest.raises(ClientError, match=r"createTrainingJob\.waitForTaskToken not recognized"):
        aws.sfn.create_state_machine(
            name=f"sm-wait-{uuid.uuid4().hex[:8]}", definition=json.dumps(pipeline(task)), roleArn=SFN_ROLE
        )
