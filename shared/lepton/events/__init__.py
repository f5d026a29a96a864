"""Events Lepton publishes on its EventBridge bus: one pydantic model per detail-type."""

from lepton.events.base import SOURCE, LeptonEvent
from lepton.events.publisher import EventBridgePublisher, EventPublisher

__all__ = ["SOURCE", "EventBridgePublisher", "EventPublisher", "LeptonEvent"]
