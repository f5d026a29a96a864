"""Ingest Lambda: S3 ObjectCreated on incoming/<project>/<file>.csv -> dataset version or quarantine."""

from __future__ import annotations

from typing import Any

import ingest_entry
import wiring
from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext

from lepton.observability import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path='Records[0].responseElements."x-amz-request-id"')
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
@event_source(data_class=S3Event)
def handler(event: S3Event, context: LambdaContext) -> dict[str, Any]:
    return ingest_entry.handle(event, wiring.ingest_function(), context, wiring.idempotency_config())
