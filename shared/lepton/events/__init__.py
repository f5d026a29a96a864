"""Events Lepton publishes on its EventBridge bus: one pydantic model per detail-type.

The publisher (botocore, observability) is imported on first use, so that importing an event
model stays cheap for code that only builds or validates events."""

from typing import TYPE_CHECKING, Any

from lepton.events.base import SOURCE, LeptonEvent

if TYPE_CHECKING:
    from lepton.events.publisher import EventBridgePublisher, EventPublisher

__all__ = ["SOURCE", "EventBridgePublisher", "EventPublisher", "LeptonEvent"]


def __getattr__(name: str) -> Any:
    if name in ("EventBridgePublisher", "EventPublisher"):
        from lepton.events import publisher

        return getattr(publisher, name)
    raise AttributeError(f"module 'lepton.events' has no attribute {name!r}")
