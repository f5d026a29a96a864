"""CreateTrainingJob runs the entry point under the SageMaker training container contract."""

from __future__ import annotations

import json
import re

import pytest
from aws_kit import channel, untar, wait_until
from botocore.exceptions import ClientError
from smlocal_helpers import BUCKET, METRICS, Aws, script_hyperparameters, training_request, wait_training

from localcloud import sagemaker as local_sagemaker


def test_training_job_runs_end_to_end(aws: Aws) -> None:
    channels = [
        channel("train", f"s3://{BUCKET}/datasets/ds-1/train/"),
        channel("validation", f"s3://{BUCKET}/datasets/ds-1/validation"),
        channel("stats", f"s3://{BUCKET}/datasets/ds-1/stats.json"),
    ]
    hps = script_hyperparameters(epochs=4, learning_rate=0.01, x=0.5, optimizer="sgd", channels="train,validation")
    arn = aws.sagemaker.create_training_job(**training_request("toy-e2e", channels, HyperParameters=hps))
    assert arn["TrainingJobArn"].endswith(":training-job/toy-e2e")

    job = wait_training(aws, "toy-e2e")

    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["SecondaryStatus"] == "Completed"
    assert [t["Status"] for t in job["SecondaryStatusTransitions"]] == [
        "Starting",
        "Downloading",
        "Training",
        "Uploading",
        "Completed",
    ]
    assert all("EndTime" in t for t in job["SecondaryStatusTransitions"])
    assert job["TrainingStartTime"] <= job["TrainingEndTime"]
    assert job["TrainingTimeInSeconds"] >= 1
    # The user's MetricDefinitions are kept (moto replaces them with a fake one).
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == METRICS
    # Last value of each metric; the toy's loss at epoch 4: (0.5-0.3)^2 + 0 + 0.05 + 1/4 = 0.34
    final = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert final == {
        "epoch": 4.0,
        "validation:loss": pytest.approx(0.34),
        "train:loss": pytest.approx(0.35),
        "validation:accuracy": pytest.approx(1 / 1.34, abs=1e-6),
    }

    model_uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert model_uri == f"s3://{BUCKET}/models/toy-e2e/output/model.tar.gz"
    record = json.loads(untar(aws.get("models/toy-e2e/output/model.tar.gz"))["model.json"])
    # Hyperparameters as sorted `--name value` arguments, script-mode keys left out, values JSON-decoded.
    assert record["argv"] == [
        "--channels",
        "train,validation",
        "--epochs",
        "4",
        "--learning_rate",
        "0.01",
        "--optimizer",
        "sgd",
        "-x",  # the toolkit passes one-letter names with one dash
        "0.5",
    ]
    assert record["hyperparameters"] == hps  # /opt/ml/input/config/hyperparameters.json holds the raw strings
    assert record["channels"] == {"stats": ["stats.json"], "train": ["part-0.csv"], "validation": ["part-0.csv"]}
    env = record["env"]
    assert not env["SM_MODEL_DIR"].startswith("/opt/ml"), "every /opt/ml path is relocated under the sandbox"
    assert env["SM_MODEL_DIR"].endswith("/opt/ml/model")
    assert env["SM_CHANNEL_TRAIN"].endswith("/opt/ml/input/data/train")
    assert env["SM_OUTPUT_DATA_DIR"].endswith("/opt/ml/output/data")
    assert env["SM_INPUT_DIR"].endswith("/opt/ml/input")
    assert json.loads(env["SM_CHANNELS"]) == ["stats", "train", "validation"]
    assert json.loads(env["SM_HPS"]) == {
        "channels": "train,validation",
        "epochs": 4,
        "learning_rate": 0.01,
        "optimizer": "sgd",
        "x": 0.5,
    }
    assert env["SM_HP_LEARNING_RATE"] == "0.01"
    assert env["SM_CURRENT_HOST"] == "algo-1"
    assert json.loads(env["SM_HOSTS"]) == ["algo-1"]
    assert env["SM_NUM_GPUS"] == "0"
    assert int(env["SM_NUM_CPUS"]) >= 1
    assert env["SM_MODULE_DIR"] == f"s3://{BUCKET}/code/train/sourcedir.tar.gz"
    assert env["SM_USER_ENTRY_POINT"] == "toy_train.py"
    assert json.loads(env["SM_TRAINING_ENV"])["job_name"] == "toy-e2e"
    assert env["TRAINING_JOB_NAME"] == "toy-e2e"

    assert untar(aws.get("models/toy-e2e/output/output.tar.gz")) == {"report.txt": b"rows=4\n"}

    stream, messages = aws.log_messages("/aws/sagemaker/TrainingJobs", "toy-e2e")
    assert re.fullmatch(r"toy-e2e/algo-1-\d{10}", stream)
    assert "validation:loss=0.340000" in messages
    assert messages[-1] == "done"


def test_training_job_is_in_progress_while_it_runs_and_stops_on_request(aws: Aws) -> None:
    hps = script_hyperparameters(mode="sleep", sleep=30)
    aws.sagemaker.create_training_job(**training_request("toy-stop", HyperParameters=hps))
    wait_until(lambda: aws.sagemaker.describe_training_job(TrainingJobName="toy-stop")["SecondaryStatus"] == "Training")
    assert aws.sagemaker.describe_training_job(TrainingJobName="toy-stop")["TrainingJobStatus"] == "InProgress"

    aws.sagemaker.stop_training_job(TrainingJobName="toy-stop")
    assert aws.sagemaker.describe_training_job(TrainingJobName="toy-stop")["TrainingJobStatus"] in (
        "Stopping",
        "Stopped",
    )
    job = wait_training(aws, "toy-stop", timeout=60)

    assert job["TrainingJobStatus"] == "Stopped"
    assert job["SecondaryStatus"] == "Stopped"
    assert "Stopping" in [t["Status"] for t in job["SecondaryStatusTransitions"]]
    # As on AWS, what the job had saved is uploaded.
    assert job["ModelArtifacts"]["S3ModelArtifacts"].endswith("/toy-stop/output/model.tar.gz")
    with pytest.raises(ClientError, match="in status Stopped"):
        aws.sagemaker.stop_training_job(TrainingJobName="toy-stop")


def test_max_runtime_is_honoured(aws: Aws) -> None:
    request = training_request(
        "toy-timeout",
        HyperParameters=script_hyperparameters(mode="sleep", sleep=30),
        StoppingCondition={"MaxRuntimeInSeconds": 1},
    )
    aws.sagemaker.create_training_job(**request)
    job = wait_training(aws, "toy-timeout", timeout=60)
    assert job["TrainingJobStatus"] == "Stopped"
    assert job["SecondaryStatus"] == "MaxRuntimeExceeded"


@pytest.mark.parametrize(
    ("name", "hyperparameters", "channels", "reason"),
    [
        (
            "bad-hp",
            script_hyperparameters(learning_rate=-1),
            None,
            r"^AlgorithmError: Bad hyperparameter learning_rate: it must be > 0, got -1\.0$",
        ),
        (
            "unknown-hp",
            script_hyperparameters(momentum=0.9),
            None,
            r"^AlgorithmError: Bad hyperparameters: unrecognized arguments: --momentum 0\.9$",
        ),
        (
            "missing-channel",
            script_hyperparameters(channels="train,validation"),
            None,
            r"^AlgorithmError: Missing channel 'validation': the job needs it \(SM_CHANNELS is \[\"train\"\]\)$",
        ),
        (
            "nan-loss",
            script_hyperparameters(mode="nan", learning_rate=10),
            None,
            r"^AlgorithmError: Training diverged: train:loss is NaN at epoch 1",
        ),
        (
            "crash",
            script_hyperparameters(mode="crash"),
            None,
            r"(?s)^AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage \"Traceback.*"
            r"RuntimeError: the toy trainer crashed on purpose\"\nCommand \".*toy_train\.py --mode crash\"$",
        ),
        (
            "no-data",
            script_hyperparameters(),
            [channel("train", f"s3://{BUCKET}/datasets/nothing-here/")],
            r"^ClientError: Data download failed: No S3 objects found under S3 URL "
            rf"\"s3://{BUCKET}/datasets/nothing-here/\"",
        ),
        (
            "no-bucket",
            script_hyperparameters(),
            [channel("train", "s3://no-such-bucket-here/train/")],
            r"The S3 bucket \"no-such-bucket-here\" does not exist",
        ),
    ],
)
def test_failures_end_the_job_with_a_clear_reason(
    aws: Aws, name: str, hyperparameters: dict[str, str], channels: list[dict[str, object]] | None, reason: str
) -> None:
    aws.sagemaker.create_training_job(**training_request(name, channels, HyperParameters=hyperparameters))
    job = wait_training(aws, name)
    assert job["TrainingJobStatus"] == "Failed"
    assert job["SecondaryStatus"] == "Failed"
    assert re.search(reason, job["FailureReason"]), job["FailureReason"]
    assert len(job["FailureReason"]) <= 1024
    assert "ModelArtifacts" not in job
    assert f"models/{name}/output/model.tar.gz" not in aws.keys("models/")


def test_nan_metric_is_left_out_of_final_metrics(aws: Aws) -> None:
    aws.sagemaker.create_training_job(
        **training_request("nan-metrics", HyperParameters=script_hyperparameters(mode="nan", learning_rate=10))
    )
    job = wait_training(aws, "nan-metrics")
    assert {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]} == {"epoch": 1.0}


def test_an_image_that_is_not_a_pytorch_dlc_fails_the_job(aws: Aws) -> None:
    request = training_request("custom-image")
    request["AlgorithmSpecification"]["TrainingImage"] = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-trainer:1"
    aws.sagemaker.create_training_job(**request)
    job = wait_training(aws, "custom-image")
    assert job["TrainingJobStatus"] == "Failed"
    assert "is not runnable locally" in job["FailureReason"]
    assert "my-trainer:1" in job["FailureReason"]


def test_invalid_requests_are_rejected_with_400s(aws: Aws) -> None:
    aws.sagemaker.create_training_job(**training_request("dup"))
    with pytest.raises(ClientError) as duplicate:
        aws.sagemaker.create_training_job(**training_request("dup"))
    assert duplicate.value.response["Error"]["Code"] == "ResourceInUse"
    assert duplicate.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    request = training_request("bad-regex")
    request["AlgorithmSpecification"]["MetricDefinitions"] = [{"Name": "loss", "Regex": "loss=[0-9.]+"}]
    with pytest.raises(ClientError, match="must have a capture group") as no_group:
        aws.sagemaker.create_training_job(**request)
    assert no_group.value.response["Error"]["Code"] == "ValidationException"

    with pytest.raises(ClientError, match="Could not find training job") as missing:
        aws.sagemaker.stop_training_job(TrainingJobName="never-created")
    assert missing.value.response["Error"]["Code"] == "ValidationException"


def test_jobs_run_concurrently_and_wait_for_jobs_waits_for_all(aws: Aws) -> None:
    names = [f"parallel-{i}" for i in range(4)]
    for name in names:
        hps = script_hyperparameters(mode="sleep", sleep=1)
        aws.sagemaker.create_training_job(**training_request(name, HyperParameters=hps))
    local_sagemaker.wait_for_jobs(30)
    jobs = [aws.sagemaker.describe_training_job(TrainingJobName=n) for n in names]
    assert [j["TrainingJobStatus"] for j in jobs] == ["Completed"] * 4
    # Their Training phases overlap: the jobs ran side by side, not one after the other.
    spans = [
        next((t["StartTime"], t["EndTime"]) for t in j["SecondaryStatusTransitions"] if t["Status"] == "Training")
        for j in jobs
    ]
    overlapping = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert overlapping >= 2, spans
    listed = aws.sagemaker.list_training_jobs(StatusEquals="Completed")["TrainingJobSummaries"]
    assert {j["TrainingJobName"] for j in listed} >= set(names)


def test_shutdown_stops_running_jobs(aws: Aws) -> None:
    aws.sagemaker.create_training_job(
        **training_request("shutdown-me", HyperParameters=script_hyperparameters(mode="sleep", sleep=60))
    )
    wait_until(
        lambda: aws.sagemaker.describe_training_job(TrainingJobName="shutdown-me")["SecondaryStatus"] == "Training"
    )
    local_sagemaker.shutdown(timeout=10)
    job = aws.sagemaker.describe_training_job(TrainingJobName="shutdown-me")
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")


def test_a_channel_skips_objects_deleted_from_a_versioned_bucket(aws: Aws) -> None:
    """S3 lists no deleted object (its latest version is a delete marker): the channel holds what is
    left, and a prefix whose objects were all deleted is an empty prefix."""
    bucket = "lepton-smlocal-versioned"
    aws.s3.create_bucket(Bucket=bucket)
    aws.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for key in ("kept/train/part-0.csv", "kept/train/part-1.csv", "gone/train/part-0.csv"):
        aws.s3.put_object(Bucket=bucket, Key=key, Body=b"1.0,2.0\n3.0,4.0\n")
    aws.s3.delete_object(Bucket=bucket, Key="kept/train/part-1.csv")
    aws.s3.delete_object(Bucket=bucket, Key="gone/train/part-0.csv")

    aws.sagemaker.create_training_job(
        **training_request("versioned-kept", [channel("train", f"s3://{bucket}/kept/train/")])
    )
    aws.sagemaker.create_training_job(
        **training_request("versioned-gone", [channel("train", f"s3://{bucket}/gone/train/")])
    )
    kept, gone = wait_training(aws, "versioned-kept"), wait_training(aws, "versioned-gone")

    assert kept["TrainingJobStatus"] == "Completed", kept.get("FailureReason")
    _, lines = aws.log_messages("/aws/sagemaker/TrainingJobs", "versioned-kept")
    assert "rows=2" in lines  # part-0.csv's two rows; the deleted part-1.csv was not downloaded
    assert gone["TrainingJobStatus"] == "Failed"
    assert gone["FailureReason"].startswith(
        f'ClientError: Data download failed: No S3 objects found under S3 URL "s3://{bucket}/gone/train/"'
    )
