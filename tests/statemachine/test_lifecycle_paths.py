"""The lifecycle state machine's successful paths, on the deployed template: a CSV uploaded through
the real ingest starts it; plain training (Train) and tuning (Tune -> DescribeBestTrial) both end in
Registered with a model version whose metrics, artifact and lineage are what the jobs produced."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

import pytest
from lepton_stack import denied, role_documents
from lifecycle_kit import QUICK_TRAINING, Execution, Lifecycle

from lepton.lifecycle import LifecycleStart, PrepareTrainingInput

pytestmark = pytest.mark.slow

TUNING = {
    "strategy": "Random",
    "objective_metric": "validation:loss",
    "objective_type": "Minimize",
    "max_jobs": 2,
    "max_parallel_jobs": 2,
    "random_seed": 5,
    "ranges": {
        "learning_rate": {"type": "continuous", "min": 0.001, "max": 0.1, "scaling": "Logarithmic"},
        "hidden_sizes": {"type": "categorical", "values": ["8", "16"]},
    },
}


def s3_bytes(lifecycle: Lifecycle, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body: bytes = lifecycle.cloud.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def final_metrics(job: dict[str, Any]) -> dict[str, float]:
    return {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}


def run_project(lifecycle: Lifecycle, project: str, training: dict[str, Any]) -> dict[str, Any]:
    lifecycle.create_project(project, training)
    dataset_id = lifecycle.upload(project, "wine.csv")
    execution = lifecycle.finish(lifecycle.ingest_execution(project, dataset_id))
    assert execution.status == "SUCCEEDED", (execution.description, execution.task_failures())
    return {"project": project, "dataset_id": dataset_id, "execution": execution}


@pytest.fixture(scope="module")
def plain(lifecycle: Lifecycle) -> dict[str, Any]:
    return run_project(lifecycle, "plain", {"hyperparameters": QUICK_TRAINING})


@pytest.fixture(scope="module")
def tuned(lifecycle: Lifecycle) -> dict[str, Any]:
    static = {k: v for k, v in QUICK_TRAINING.items() if k != "hidden_sizes"}
    return run_project(lifecycle, "tuned", {"hyperparameters": static, "tuning": TUNING})


def check_registered(lifecycle: Lifecycle, outcome: dict[str, Any], training_job: dict[str, Any]) -> dict[str, Any]:
    """What every successful run leaves behind: a version with the job's figures, artifact and lineage."""
    project, execution = outcome["project"], outcome["execution"]
    registered = json.loads(execution.description["output"])
    version = lifecycle.version(project, registered["version"])
    # metrics: the training job's final validation:* figures and the evaluation job's test:* figures
    trained = final_metrics(training_job)
    validation = {k: v for k, v in trained.items() if k.startswith("validation:")}
    assert {"validation:loss", "validation:accuracy", "validation:f1_macro"} <= set(validation)
    assert {k: version["metrics"][k] for k in validation} == validation
    evaluated = execution.state_output("Evaluate")["evaluated"]
    report = json.loads(s3_bytes(lifecycle, evaluated["evaluation_uri"] + "/evaluation.json"))
    tests = {f"test:{k}": v for k, v in report["metrics"].items() if v is not None}
    assert {"test:accuracy", "test:f1_macro", "test:roc_auc", "test:fgsm_accuracy"} <= set(tests)
    assert {k: version["metrics"][k] for k in tests} == pytest.approx(tests)
    # the artifact: the training job's model.tar.gz, with the sha256 of the object in S3
    artifact = training_job["ModelArtifacts"]["S3ModelArtifacts"]
    assert version["artifact_uri"] == artifact == registered["artifact_uri"]
    assert version["artifact_sha256"] == hashlib.sha256(s3_bytes(lifecycle, artifact)).hexdigest()
    assert report["model"]["archive_sha256"] == version["artifact_sha256"]  # evaluated what was registered
    # lineage
    pointer = json.loads(s3_bytes(lifecycle, f"s3://{lifecycle.lepton.bucket}/code/jobs/current.json"))
    assert version["dataset_id"] == outcome["dataset_id"]
    assert version["training_job"] == training_job["TrainingJobName"]
    assert version["code_version"] == pointer["code_version"]
    assert version["run_id"] == execution.run_id
    assert version["branch"] == "main" and version["parent_version"] is None
    assert version["status"] == "REGISTERED"
    run = lifecycle.run(project, execution.run_id)
    assert run["status"] == "SUCCEEDED" and run["version"] == version["number"]
    return version


def test_plain_training_runs_train_evaluate_register(lifecycle: Lifecycle, plain: dict[str, Any]) -> None:
    execution: Execution = plain["execution"]
    assert execution.states == ["PrepareTraining", "ChooseTraining", "Train", "Evaluate", "Register", "Registered"]
    sagemaker = lifecycle.cloud.client("sagemaker")
    job_name = execution.state_output("Train")["trained"]["job"]["TrainingJobName"]
    job = sagemaker.describe_training_job(TrainingJobName=job_name)
    assert job["TrainingJobStatus"] == "Completed"
    version = check_registered(lifecycle, plain, job)
    assert version["number"] == 1
    assert {k: version["hyperparameters"][k] for k in QUICK_TRAINING} == QUICK_TRAINING
    prepared = execution.state_output("PrepareTraining")["prepared"]["run"]
    # the run is named after its execution, so a retried PrepareTraining returns it (tests/unit/lifecycle)
    named = PrepareTrainingInput(
        start=LifecycleStart(project="plain"),
        execution_id=execution.description["executionArn"],
        execution_started=execution.description["startDate"],
    )
    assert prepared["run_id"] == named.run_id()
    # PrepareTraining marked it RUNNING in this execution before training began
    run = lifecycle.run("plain", prepared["run_id"])
    assert run["execution_arn"] == execution.description["executionArn"]
    assert execution.description["startDate"] <= datetime.fromisoformat(run["started_at"]) <= job["CreationTime"]
    evaluation = sagemaker.describe_processing_job(ProcessingJobName=prepared["evaluation_job_name"])
    assert evaluation["ProcessingJobStatus"] == "Completed"
    assert evaluation["ProcessingInputs"][0]["S3Input"]["S3Uri"] == version["artifact_uri"]
    expected = {"lepton:project": "plain", "lepton:run": version["run_id"], "lepton:dataset": version["dataset_id"]}
    for arn in (job["TrainingJobArn"], evaluation["ProcessingJobArn"]):
        assert {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]} == expected


def test_tuning_runs_tune_describe_best_trial_evaluate_register(lifecycle: Lifecycle, tuned: dict[str, Any]) -> None:
    execution: Execution = tuned["execution"]
    assert execution.states == [
        "PrepareTraining", "ChooseTraining", "Tune", "DescribeBestTrial", "Evaluate", "Register", "Registered",
    ]  # fmt: skip
    sagemaker = lifecycle.cloud.client("sagemaker")
    tuning_name = execution.state_output("Tune")["tuned"]["tuning_job_name"]
    tuning = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_name)
    assert tuning["HyperParameterTuningJobStatus"] == "Completed"
    assert tuning["HyperParameterTuningJobConfig"]["Strategy"] == "Random"
    assert tuning["TrainingJobStatusCounters"]["Completed"] == 2
    trials = [
        sagemaker.describe_training_job(TrainingJobName=s["TrainingJobName"])
        for s in sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName=tuning_name)[
            "TrainingJobSummaries"
        ]
    ]
    best = min(trials, key=lambda t: final_metrics(t)["validation:loss"])
    assert tuning["BestTrainingJob"]["TrainingJobName"] == best["TrainingJobName"]
    version = check_registered(lifecycle, tuned, best)
    # the version records the best trial's own hyperparameters: the static ones and the tuned ones
    assert version["hyperparameters"]["learning_rate"] == float(best["HyperParameters"]["learning_rate"])
    assert str(version["hyperparameters"]["hidden_sizes"]) == best["HyperParameters"]["hidden_sizes"]
    assert version["hyperparameters"]["epochs"] == QUICK_TRAINING["epochs"]


def test_prepare_training_may_do_what_the_lifecycle_asks_of_it(lifecycle: Lifecycle, plain: dict[str, Any]) -> None:
    """The local runtime does not enforce the functions' roles: this reads PrepareTraining's role
    back and evaluates it against every call the function made above (read the project and dataset,
    record the run in one transaction, publish RunCreated, read the published job code, describe
    its execution)."""
    lepton = lifecycle.lepton
    function = lifecycle.cloud.client("lambda").get_function_configuration(
        FunctionName=lepton.function("PrepareTrainingFunction")
    )
    table = lifecycle.cloud.client("dynamodb").describe_table(TableName=lepton.table)["Table"]["TableArn"]
    bus = lifecycle.cloud.client("events").describe_event_bus(Name=lepton.outputs["EventBusName"])["Arn"]
    key = lepton.stack.nested["Data"].outputs["DataKeyArn"]
    code = json.loads(s3_bytes(lifecycle, f"s3://{lepton.bucket}/code/jobs/current.json"))["code_version"]
    needs = [
        *[(f"dynamodb:{action}", table) for action in
          ("GetItem", "BatchGetItem", "Query", "PutItem", "UpdateItem", "ConditionCheckItem")],
        ("events:PutEvents", bus),
        ("s3:GetObject", f"arn:aws:s3:::{lepton.bucket}/code/jobs/current.json"),
        ("s3:GetObject", f"arn:aws:s3:::{lepton.bucket}/code/jobs/{code}/sourcedir.tar.gz"),
        ("s3:ListBucket", f"arn:aws:s3:::{lepton.bucket}"),
        ("kms:Decrypt", key),
        ("states:DescribeExecution", plain["execution"].arn),
    ]  # fmt: skip
    assert denied(role_documents(lifecycle.cloud, function["Role"]), needs) == []
    # and no more of the bucket than the published code
    assert denied(role_documents(lifecycle.cloud, function["Role"]),
                  [("s3:GetObject", f"arn:aws:s3:::{lepton.bucket}/curated/plain/x.parquet")]) != []  # fmt: skip
    # the run it recorded names the job code it trained with
    run = lifecycle.run("plain", plain["execution"].run_id)
    assert run["code_version"] == code


def test_a_branch_recorded_through_the_api_runs_the_lifecycle(lifecycle: Lifecycle, plain: dict[str, Any]) -> None:
    """POST .../versions/<n>/branches records a run from that version with overrides and starts the
    lifecycle for it (named <project>-<run_id>): it trains with the overrides, on the base version's
    dataset, and registers a version on the branch whose parent is the base version."""
    base = lifecycle.version("plain", 1)
    body = {"branch": "longer", "overrides": {"hyperparameters": {"epochs": 3}}}
    branch = lifecycle.api.post("/projects/plain/versions/1/branches", body)
    assert branch["execution_arn"].endswith(f":plain-{branch['run_id']}")
    execution = lifecycle.finish(branch["execution_arn"])
    assert execution.status == "SUCCEEDED", (execution.description, execution.task_failures())
    assert execution.states == ["PrepareTraining", "ChooseTraining", "Train", "Evaluate", "Register", "Registered"]
    version = lifecycle.version("plain", json.loads(execution.description["output"])["version"])
    assert (version["branch"], version["parent_version"], version["run_id"]) == ("longer", 1, branch["run_id"])
    assert version["hyperparameters"]["epochs"] == 3 and version["dataset_id"] == base["dataset_id"]
    run = lifecycle.run("plain", branch["run_id"])
    assert (run["status"], run["execution_arn"]) == ("SUCCEEDED", branch["execution_arn"])
    # the local runtime does not enforce roles: the API's role allows the start it made, and the
    # stop of a run's execution (POST .../stop), of this state machine's executions only
    api = lifecycle.cloud.client("lambda").get_function_configuration(
        FunctionName=lifecycle.lepton.function("ApiFunction")
    )
    other = branch["execution_arn"].replace(":execution:", ":execution:another-", 1)
    needs = [
        ("states:StartExecution", lifecycle.lepton.state_machine),
        ("states:StopExecution", branch["execution_arn"]),
        ("states:StopExecution", other),
    ]
    assert denied(role_documents(lifecycle.cloud, api["Role"]), needs) == [("states:StopExecution", other)]
