"""Where pass events go once the tracker emits them: PostgreSQL (GetPlateEvents) and the delivery spool."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import asyncpg

from anpr.api.common.v1 import plate_event_pb2
from anpr.ingest import metrics
from anpr.ingest.convert import plate_event
from anpr.ingest.delivery import Delivery
from anpr.ingest.directory import CameraDirectory
from anpr.ingest.event_store import EventStore
from anpr.ingest.tracking.model import PassEvent

log = logging.getLogger(__name__)


class EventEmitter:
    """Turns pass events into PlateEvent messages and hands them on."""

    def __init__(self, directory: CameraDirectory, store: EventStore, delivery: Delivery) -> None:
        self._directory = directory
        self._store = store
        self._delivery = delivery

    async def emit(self, events: Sequence[PassEvent]) -> list[plate_event_pb2.PlateEvent]:
        """Store and spool the events; returns the messages."""
        if not events:
            return []
        now = time.time()
        messages = []
        for event in events:
            camera = await self._directory.get(event.camera_id)
            messages.append(plate_event(event, camera, now))
            metrics.EVENTS_EMITTED.labels(event.stage.name.lower()).inc()
            metrics.CAPTURE_TO_EVENT_SECONDS.observe(max(0.0, now - event.last_seen))
            # Plate text is personal information: DEBUG only.
            log.debug(
                "plate event", extra={"event_id": event.event_id, "revision": event.revision, "plate": event.text}
            )
        # The store first: a delivery acknowledged before the row exists would otherwise be lost as "pending".
        try:
            await self._store.save(messages)
        except (OSError, asyncpg.PostgresError) as exc:
            log.error("could not store plate events for GetPlateEvents; delivery goes on: %s", exc)
        await self._delivery.submit(messages)
        return messages
