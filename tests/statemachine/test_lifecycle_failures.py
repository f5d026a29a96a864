"""Every failure branch of the lifecycle state machine, on the deployed template: a failure at each
task that can fail (PrepareTraining, Train, Tune, Evaluate, Register) is caught into MarkFailed,
which records the run FAILED with the failing step and the cause, and the execution fails with
LifecycleFailed; MarkFailed failing itself is retried, then caught into Failed.

Lambda tasks fail on purpose through reserved concurrency 0 (Lambda throttles, Step Functions sees
Lambda.TooManyRequestsException); SageMaker tasks through bad configuration or removed inputs.
DescribeBestTrial is the one task without a test: it describes the training job the tuning job just
named as its best, and nothing short of a SageMaker outage or a missing IAM permission (neither of
which the local AWS emulates) makes that call fail."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from lepton_stack import denied, role_documents
from lifecycle_kit import QUICK_TRAINING, Execution, Lifecycle

pytestmark = pytest.mark.slow

BAD_HYPERPARAMETERS = {**QUICK_TRAINING, "learning_rate": -1}
THROTTLED = "Lambda.TooManyRequestsException"


@pytest.fixture(scope="module")
def wine(lifecycle: Lifecycle) -> dict[str, Any]:
    """wine.csv in a project whose first training fails at once (a bad hyperparameter): the execution
    the ingest function starts is the Train failure; later executions run what each test sets."""
    lifecycle.create_project("wine", {"hyperparameters": BAD_HYPERPARAMETERS})
    dataset_id = lifecycle.upload("wine", "wine.csv")
    first = lifecycle.finish(lifecycle.ingest_execution("wine", dataset_id))
    return {"dataset_id": dataset_id, "first": first}


def assert_lifecycle_failed(execution: Execution, states: list[str]) -> None:
    assert execution.status == "FAILED", execution.description
    assert execution.description["error"] == "LifecycleFailed"
    assert execution.states == states
    # the execution's cause names the failing step, its error and its cause
    (step,) = [s for s in states if s not in ("ChooseTraining", "MarkFailed", "Failed")][-1:]
    cause = json.loads(execution.description["cause"])
    assert list(cause) == [step]
    assert set(cause[step]) == {"Error", "Cause"}


def assert_run_failed(
    lifecycle: Lifecycle, execution: Execution, step: str, error: str, *, marked: bool = True
) -> dict[str, Any]:
    run = lifecycle.run("wine", execution.run_id)
    assert (run["status"], run["execution_arn"]) == ("FAILED", execution.arn)  # failed by its own execution
    assert run["failure"]["step"] == step
    assert run["failure"]["error"] == error
    assert run["version"] is None
    if marked:  # by MarkFailed (else by ExecutionEnded)
        output = execution.mark_failed_output()
        assert output["run_id"] == run["run_id"] and output["run_status"] == "FAILED" and output["error"] == error
    return run


def test_a_failure_in_prepare_training_is_caught_and_nothing_is_recorded(
    lifecycle: Lifecycle, wine: dict[str, Any]
) -> None:
    """A start for a dataset the project does not have: PrepareTraining refuses it before any run
    exists, so MarkFailed has nothing to mark, and the execution fails."""
    runs_before = lifecycle.api.get("/projects/wine/runs")["items"]
    arn = lifecycle.start("wrong-dataset", "wine", "ds-00000000000000000000")
    execution = lifecycle.finish(arn)
    assert_lifecycle_failed(execution, ["PrepareTraining", "MarkFailed", "Failed"])
    (failure,) = execution.task_failures()
    assert failure["error"] == "ValidationFailed"
    assert "ds-00000000000000000000 is not a dataset of project wine" in failure["cause"]
    marked = execution.mark_failed_output()
    assert marked == {"project": "wine", "run_id": None, "run_status": None, "version": None,
                      "version_status": None, "error": "ValidationFailed"}  # fmt: skip
    assert lifecycle.api.get("/projects/wine/runs")["items"] == runs_before


def test_a_failure_in_train_is_caught_and_the_run_marked_failed(lifecycle: Lifecycle, wine: dict[str, Any]) -> None:
    execution = wine["first"]
    assert_lifecycle_failed(execution, ["PrepareTraining", "ChooseTraining", "Train", "MarkFailed", "Failed"])
    run = assert_run_failed(lifecycle, execution, "Train", "States.TaskFailed")
    cause = run["failure"]["cause"]  # the failed job's name, status and FailureReason, readable
    assert re.match(r"^\S+ Failed: AlgorithmError: Invalid hyperparameters: hyperparameter 'learning_rate'", cause)


def test_a_tuning_job_refused_by_sagemaker_is_caught(lifecycle: Lifecycle, wine: dict[str, Any]) -> None:
    """An objective metric the training job does not report: CreateHyperParameterTuningJob answers a
    ValidationException, which Step Functions names SageMaker.AmazonSageMakerException (the name
    throttling also gets, hence Tune's two retries)."""
    tuning = {"objective_metric": "validation:auc", "objective_type": "Maximize", "max_jobs": 2,
              "ranges": {"learning_rate": {"type": "continuous", "min": 0.001, "max": 0.1}}}  # fmt: skip
    lifecycle.set_training("wine", {"hyperparameters": QUICK_TRAINING, "tuning": tuning})
    execution = lifecycle.finish(lifecycle.start("bad-objective", "wine", wine["dataset_id"]))
    assert_lifecycle_failed(execution, ["PrepareTraining", "ChooseTraining", "Tune", "MarkFailed", "Failed"])
    assert [f["error"] for f in execution.task_failures()] == ["SageMaker.AmazonSageMakerException"] * 3
    run = assert_run_failed(lifecycle, execution, "Tune", "SageMaker.AmazonSageMakerException")
    assert "The objective metric 'validation:auc'" in run["failure"]["cause"]
    assert "Error Code: ValidationException" in run["failure"]["cause"]


def test_a_tuning_job_whose_trials_all_fail_is_caught(lifecycle: Lifecycle, wine: dict[str, Any]) -> None:
    tuning = {"strategy": "Random", "max_jobs": 2, "max_parallel_jobs": 2,
              "ranges": {"dropout": {"type": "continuous", "min": 0.0, "max": 0.5}}}  # fmt: skip
    lifecycle.set_training("wine", {"hyperparameters": BAD_HYPERPARAMETERS, "tuning": tuning})
    execution = lifecycle.finish(lifecycle.start("trials-fail", "wine", wine["dataset_id"]))
    assert_lifecycle_failed(execution, ["PrepareTraining", "ChooseTraining", "Tune", "MarkFailed", "Failed"])
    run = assert_run_failed(lifecycle, execution, "Tune", "States.TaskFailed")
    assert re.fullmatch(
        r"\S+ Failed: No training job reported the objective metric 'validation:loss'.*", run["failure"]["cause"]
    )
    assert "hyperparameter 'learning_rate' = '-1'" in run["failure"]["cause"]
    tuning_job = json.loads(json.loads(execution.description["cause"])["Tune"]["Cause"])  # the whole description
    assert tuning_job["HyperParameterTuningJobStatus"] == "Failed"
    assert tuning_job["TrainingJobStatusCounters"]["NonRetryableError"] == 2


def test_a_failure_in_evaluate_is_caught_after_training_succeeded(lifecycle: Lifecycle, wine: dict[str, Any]) -> None:
    """The test split removed from the curated dataset: training (which never reads it) succeeds, the
    evaluation job cannot download its input."""
    lifecycle.set_training("wine", {"hyperparameters": QUICK_TRAINING})
    saved = {key: lifecycle.cloud.client("s3").get_object(Bucket=lifecycle.lepton.bucket, Key=key)["Body"].read()
             for key in lifecycle.curated_keys("wine", wine["dataset_id"], "test")}  # fmt: skip
    lifecycle.remove_split("wine", wine["dataset_id"], "test")
    try:
        execution = lifecycle.finish(lifecycle.start("no-test-split", "wine", wine["dataset_id"]))
    finally:
        for key, body in saved.items():
            lifecycle.cloud.client("s3").put_object(Bucket=lifecycle.lepton.bucket, Key=key, Body=body)
    assert_lifecycle_failed(
        execution, ["PrepareTraining", "ChooseTraining", "Train", "Evaluate", "MarkFailed", "Failed"]
    )
    run = assert_run_failed(lifecycle, execution, "Evaluate", "States.TaskFailed")
    cause = run["failure"]["cause"]
    assert re.fullmatch(r"\S+ Failed: ClientError: Failed to download data\. No S3 objects found under .*", cause)
    assert f"/curated/wine/{wine['dataset_id']}/test/" in cause


def test_a_failure_in_register_is_retried_then_caught(lifecycle: Lifecycle, wine: dict[str, Any]) -> None:
    lifecycle.set_training("wine", {"hyperparameters": QUICK_TRAINING})
    with lifecycle.throttled("RegisterVersionFunction"):
        execution = lifecycle.finish(lifecycle.start("register-throttled", "wine", wine["dataset_id"]))
    assert_lifecycle_failed(
        execution, ["PrepareTraining", "ChooseTraining", "Train", "Evaluate", "Register", "MarkFailed", "Failed"]
    )
    assert [f["error"] for f in execution.task_failures()] == [THROTTLED] * 4  # the first try and 3 retries
    assert_run_failed(lifecycle, execution, "Register", THROTTLED)
    assert lifecycle.versions("wine") == []


def test_mark_failed_failing_is_retried_then_caught_into_failed(lifecycle: Lifecycle, wine: dict[str, Any]) -> None:
    """The Train failure again, with MarkFailed throttled: MarkFailed is tried 4 times, then its Catch
    ends the execution in Failed. The registry still learns of it: the execution's FAILED status
    change (EventBridge, default bus) reaches ExecutionEnded, which fails the run it left RUNNING."""
    lifecycle.set_training("wine", {"hyperparameters": BAD_HYPERPARAMETERS})
    with lifecycle.throttled("MarkFailedFunction"):
        execution = lifecycle.finish(lifecycle.start("mark-failed-throttled", "wine", wine["dataset_id"]))
        lifecycle.cloud.wait_idle()  # the status change's delivery
    assert_lifecycle_failed(execution, ["PrepareTraining", "ChooseTraining", "Train", "MarkFailed", "Failed"])
    failures = execution.task_failures()
    assert [f["error"] for f in failures] == ["States.TaskFailed"] + [THROTTLED] * 4
    assert json.loads(execution.description["cause"])["Train"]["Error"] == "States.TaskFailed"
    # the failure MarkFailed would have recorded, from the execution's own error and cause
    run = assert_run_failed(lifecycle, execution, "Train", "States.TaskFailed", marked=False)
    assert re.match(r"^\S+ Failed: AlgorithmError: Invalid hyperparameters", run["failure"]["cause"])
    # the function may describe the lifecycle's executions, and no other state machine's
    role = lifecycle.cloud.client("lambda").get_function_configuration(
        FunctionName=lifecycle.lepton.function("ExecutionEndedFunction")
    )["Role"]
    other = execution.arn.replace(f":execution:{execution.arn.split(':')[6]}:", ":execution:another-machine:")
    needs = [("states:DescribeExecution", execution.arn), ("states:DescribeExecution", other)]
    assert denied(role_documents(lifecycle.cloud, role), needs) == [("states:DescribeExecution", other)]


def test_an_execution_stopped_while_training_stops_the_job_and_the_run(
    lifecycle: Lifecycle, wine: dict[str, Any]
) -> None:
    """StopExecution (the console's Stop) while Train waits for its job: no Catch runs, so MarkFailed
    never does; the training job is stopped, and the ABORTED status change stops the run."""
    arn = training(lifecycle, wine, "stopped-in-train")
    sfn = lifecycle.cloud.client("stepfunctions")
    sfn.stop_execution(executionArn=arn, error="Operator", cause="wrong data")
    execution = assert_stopped_in_train(lifecycle, arn)
    run = lifecycle.run("wine", execution.run_id)
    assert (run["status"], run["execution_arn"], run["version"]) == ("STOPPED", arn, None)
    assert run["failure"]["error"] == "ExecutionAborted"
    assert lifecycle.api.get("/projects/wine/audit", limit=1)["items"][0]["actor"] == "lepton:lifecycle"


def test_a_run_stopped_through_the_api_stops_its_execution_and_job(lifecycle: Lifecycle, wine: dict[str, Any]) -> None:
    """POST .../runs/<run_id>/stop while the run trains: the execution is stopped (ABORTED), its job
    too, and the run is STOPPED by the caller with the reason; the ABORTED event then changes nothing."""
    arn = training(lifecycle, wine, "stopped-by-api")
    run_id = Execution(arn, {}, lifecycle.lepton.history(arn)).run_id
    stopped = lifecycle.api.post(f"/projects/wine/runs/{run_id}/stop", {"reason": "trained on the wrong data"})
    assert (stopped["status"], stopped["execution_arn"]) == ("STOPPED", arn)
    assert stopped["failure"] == {"error": "RunStopped", "cause": "trained on the wrong data", "step": None}
    assert_stopped_in_train(lifecycle, arn)
    assert lifecycle.run("wine", run_id) == stopped  # ExecutionEnded found it ended
    (entry,) = lifecycle.api.get("/projects/wine/audit", limit=1)["items"]
    assert (entry["action"], entry["actor"], entry["reason"]) == (
        "run.stopped",
        lifecycle.lepton.arn("alice"),
        "trained on the wrong data",
    )


def training(lifecycle: Lifecycle, wine: dict[str, Any], name: str) -> str:
    """An execution of a long training, once Train has submitted its job."""
    lifecycle.set_training("wine", {"hyperparameters": {**QUICK_TRAINING, "epochs": 400, "patience": 400}})
    arn = lifecycle.start(name, "wine", wine["dataset_id"])
    deadline = time.monotonic() + 120
    while "TaskSubmitted" not in [e["type"] for e in lifecycle.lepton.history(arn)]:
        assert time.monotonic() < deadline, "Train never submitted its job"
        time.sleep(0.2)
    return arn


def assert_stopped_in_train(lifecycle: Lifecycle, arn: str) -> Execution:
    """The execution ended ABORTED in Train, its training job Stopped, no version registered."""
    execution = lifecycle.finish(arn)
    lifecycle.cloud.wait_idle()  # the status change's delivery
    assert execution.status == "ABORTED"
    assert execution.states == ["PrepareTraining", "ChooseTraining", "Train"]
    job = execution.state_output("PrepareTraining")["prepared"]["run"]["training_job_name"]
    sagemaker = lifecycle.cloud.client("sagemaker")
    deadline = time.monotonic() + 60
    # Step Functions stops the job after the execution is ABORTED, as on AWS
    while (status := sagemaker.describe_training_job(TrainingJobName=job)["TrainingJobStatus"]) in (
        "InProgress",
        "Stopping",
    ):
        assert time.monotonic() < deadline, "the training job never stopped"
        time.sleep(0.2)
    assert status == "Stopped"
    assert lifecycle.versions("wine") == []
    return execution


def test_an_event_execution_ended_keeps_failing_on_waits_in_its_failed_events_queue(lifecycle: Lifecycle) -> None:
    """EventBridge invokes ExecutionEnded asynchronously: an event it still fails on after Lambda's two
    retries (here a status change without its execution) is not lost. Lambda's invocation record, with
    the event and the error, waits in the function's on-failure queue, which an alarm watches."""
    cloud = lifecycle.cloud
    event = {
        "version": "0",
        "id": "4c5a7d0e-failed-events-test",
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": "123456789012",
        "time": "2026-12-07T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"status": "ABORTED"},
    }
    cloud.client("lambda").invoke(
        FunctionName=lifecycle.lepton.function("ExecutionEndedFunction"),
        InvocationType="Event",
        Payload=json.dumps(event),
    )
    cloud.wait_idle()
    sqs = cloud.client("sqs")
    url = sqs.get_queue_url(QueueName=f"lepton-{lifecycle.lepton.stage}-execution-ended-failed-events")["QueueUrl"]
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]]
    (record,) = [b for b in bodies if b["requestPayload"].get("id") == event["id"]]
    assert record["requestPayload"] == event
    assert (record["requestContext"]["condition"], record["requestContext"]["approximateInvokeCount"]) == (
        "RetriesExhausted",
        3,
    )
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "ValidationError"
    assert "executionArn" in record["responsePayload"]["errorMessage"]
