"""FailureReason texts and the Step Functions error names and output format."""

from __future__ import annotations

import datetime

from localcloud.sagemaker.common import MAX_FAILURE_REASON, script_failure_reason
from localcloud.sagemaker.stepfunctions import error_name_for, to_sfn_json


def test_what_the_job_wrote_is_the_failure_reason() -> None:
    reason = script_failure_reason("AlgorithmError", "  Missing channel 'validation'\n", 2, ["noise"], "python t.py")
    assert reason == "AlgorithmError: Missing channel 'validation'"


def test_without_a_written_reason_the_last_traceback_is_reported() -> None:
    tail = ["epoch=1", "Traceback (most recent call last):", '  File "t.py", line 3', "ValueError: bad shape"]
    reason = script_failure_reason("AlgorithmError", None, 1, tail, "python t.py --e 1")
    assert reason == (
        'AlgorithmError: ExecuteUserScriptError:\nExitCode 1\nErrorMessage "Traceback (most recent call last):\n'
        '  File "t.py", line 3\nValueError: bad shape"\nCommand "python t.py --e 1"'
    )


def test_failure_reasons_fit_sagemaker_limit_and_keep_their_end() -> None:
    long = "x" * 5000 + " the real error"
    assert script_failure_reason("AlgorithmError", long, 1, [], "c").endswith("the real error")
    assert len(script_failure_reason("AlgorithmError", long, 1, [], "c")) == MAX_FAILURE_REASON
    reason = script_failure_reason("AlgorithmError", None, 1, [long], "python " + "a" * 3000)
    assert len(reason) <= MAX_FAILURE_REASON and "the real error" in reason


def test_sagemaker_error_codes_map_to_the_java_sdk_exception_names_step_functions_uses() -> None:
    assert error_name_for("ValidationException") == "SageMaker.AmazonSageMakerException"
    assert error_name_for("ResourceInUse") == "SageMaker.ResourceInUseException"
    assert error_name_for("ResourceLimitExceeded") == "SageMaker.ResourceLimitExceededException"
    assert error_name_for("ResourceNotFound") == "SageMaker.ResourceNotFoundException"
    assert error_name_for("InternalFailure") == "SageMaker.AmazonSageMakerException"


def test_describe_outputs_use_epoch_milliseconds() -> None:
    stamp = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.UTC)
    value = {"A": stamp, "B": [{"C": stamp}], "ResponseMetadata": {"x": 1}, "D": "s"}
    assert to_sfn_json(value) == {"A": 1767323045678, "B": [{"C": 1767323045678}], "D": "s"}
