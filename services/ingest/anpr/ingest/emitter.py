"""Where pass events go once the tracker emits them: PostgreSQL (GetPlateEvents) and the delivery spool.

Every event is held to the plate event contract (:mod:`anpr.domain.plate_events`) before it leaves: what the
hotlist service would drop is dropped here (and counted), and what it would refuse is not emitted, so nothing
ingest sends ends as a dead letter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from anpr.api.common.v1 import plate_event_pb2
from anpr.domain import plate_events
from anpr.ingest import metrics
from anpr.ingest.convert import plate_event
from anpr.ingest.delivery import Delivery
from anpr.ingest.directory import CameraDirectory
from anpr.ingest.store_catch_up import StoreCatchUp
from anpr.ingest.tracking.model import PassEvent
from anpr.runtime import tracing
from anpr.runtime.tracing import Origin

log = logging.getLogger(__name__)


class EventEmitter:
    """Turns pass events into PlateEvent messages and hands them on."""

    def __init__(self, directory: CameraDirectory, store: StoreCatchUp, delivery: Delivery) -> None:
        self._directory = directory
        self._store = store
        self._delivery = delivery

    async def emit(
        self, events: Sequence[PassEvent], origins: Sequence[Origin | None] = ()
    ) -> list[plate_event_pb2.PlateEvent]:
        """Store and spool the events; returns the messages. ``origins``: the frames they came from, for tracing."""
        if not events:
            return []
        with tracing.batch_span("ingest.emit_events", origins, {"anpr.events": len(events)}) as origin:
            return await self._emit(events, origin)

    async def _emit(self, events: Sequence[PassEvent], origin: Origin) -> list[plate_event_pb2.PlateEvent]:
        now = time.time()
        messages = []
        for event in events:
            camera = await self._directory.get(event.camera_id)
            message = plate_event(event, camera, now)
            if not _holds_to_contract(message):
                continue
            messages.append(message)
            metrics.EVENTS_EMITTED.labels(event.stage.name.lower()).inc()
            metrics.CAPTURE_TO_EVENT_SECONDS.observe(max(0.0, now - event.last_seen))
            # Plate text is personal information: DEBUG only.
            log.debug(
                "plate event", extra={"event_id": event.event_id, "revision": event.revision, "plate": event.text}
            )
        if not messages:
            return []
        # The store first: a delivery acknowledged before the row exists would otherwise be lost as "pending".
        # When the database fails, the rows are owed: spooled together with the events, written when it is back.
        stored = await self._store.save(messages)
        await self._delivery.submit(messages, owed_to_store=not stored, origin=origin)
        if not stored:
            self._store.owed(len(messages))
        return messages


def _holds_to_contract(message: plate_event_pb2.PlateEvent) -> bool:
    for name in plate_events.repair(message):
        metrics.EVENT_FIELDS_DROPPED.labels(name).inc()
    problems = plate_events.violations(message, require_text=True)
    if problems:
        # The tracker should have kept this pass back; a bug, not a plate (the message never names the text).
        metrics.PASSES_DISCARDED.labels("invalid_event").inc()
        log.error(
            "plate event breaks the event contract; not emitted",
            extra={"event_id": message.event_id, "revision": message.revision, "problems": problems},
        )
        return False
    return True
