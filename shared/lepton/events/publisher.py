"""Publishing events: a port and its EventBridge adapter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from lepton.events.base import SOURCE, LeptonEvent
from lepton.observability import logger, metrics


class EventPublisher(Protocol):
    def publish(self, events: Sequence[LeptonEvent]) -> None: ...


class EventBridgePublisher:
    """Puts events on the bus in batches of 10 (the PutEvents limit).

    Publishing happens after the state change it reports has been committed; a failed entry or a
    failed call (no such bus, throttling after botocore's retries, no network) is logged and
    counted (metric EventPublishFailures), never raised into the caller's request: the change
    stands, and its audit entry records it."""

    def __init__(self, bus_name: str, client: Any) -> None:
        self._bus = bus_name
        self._client = client

    def publish(self, events: Sequence[LeptonEvent]) -> None:
        for start in range(0, len(events), 10):
            batch = events[start : start + 10]
            entries = [
                {
                    "Source": SOURCE,
                    "DetailType": e.detail_type,
                    "Detail": e.model_dump_json(),
                    "EventBusName": self._bus,
                }
                for e in batch
            ]
            try:
                response = self._client.put_events(Entries=entries)
            except (BotoCoreError, ClientError) as exc:
                metrics.add_metric(name="EventPublishFailures", unit="Count", value=len(batch))
                logger.error(
                    "events not published",
                    extra={"bus": self._bus, "error": str(exc), "detail_types": [e.detail_type for e in batch]},
                )
                continue
            failed = response.get("FailedEntryCount", 0)
            if failed:
                metrics.add_metric(name="EventPublishFailures", unit="Count", value=failed)
                logger.error("events not published", extra={"failed": failed, "entries": response.get("Entries")})
