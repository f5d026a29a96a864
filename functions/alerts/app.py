"""EventBridge -> alerts topic: a readable notification for refused uploads, failed or rolled-back
versions and alarms."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext

from lepton.alerts import alert_for
from lepton.observability import logger, metrics, tracer

_sns = boto3.client("sns")


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    alert = alert_for(event)
    if alert is None:
        return {"sent": False}
    _sns.publish(
        TopicArn=os.environ["ALERTS_TOPIC_ARN"],
        Subject=alert.sns_subject,
        Message=alert.model_dump_json(),
        MessageAttributes={"severity": {"DataType": "String", "StringValue": alert.severity}},
    )
    metrics.add_metric(name="AlertsSent", unit="Count", value=1)
    logger.info("alert sent", extra={"subject": alert.subject, "severity": alert.severity})
    return {"sent": True, "subject": alert.subject}
