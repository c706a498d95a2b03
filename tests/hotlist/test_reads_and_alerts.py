"""ReportReads and AcknowledgeAlert: idempotent storage, alerts in the same transaction, suppression, verdicts."""

from __future__ import annotations

import asyncpg
import grpc
import grpc.aio
import pytest
from google.protobuf import duration_pb2

from anpr.api.common.v1 import plate_pb2
from anpr.api.hotlist.v1 import alert_pb2, audit_pb2, hotlist_pb2, match_pb2, read_pb2
from anpr.api.hotlist.v1 import hotlist_service_pb2 as pb
from testkit.hotlist import add_plates, caller, channel_to, create_list, plate_event
from testkit.ingest_env import metric_value
from testkit.scrape import fetch_text
from testkit.services import StartService


async def test_reads_are_idempotent_and_hits_raise_alerts_once(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("hotlist", database_url=database_url)
    async with channel_to(server) as channel:
        admin = caller(channel, tokens["hotlist-admin"])
        ingest = caller(channel, tokens["ingest-service"])
        await create_list(admin, "stolen", priority=70, alert_suppression_window=duration_pb2.Duration(seconds=0))
        await add_plates(admin, "stolen", "CA123456")

        first = plate_event("CA123456", event_id="pass-1", crop=b"\xff\xd8jpeg")
        reply = await ingest.stub.ReportReads(pb.ReportReadsRequest(events=[first]), metadata=ingest.metadata)
        result = reply.results[0]
        assert result.status == 1
        assert len(result.alerts) == 1
        alert = result.alerts[0]
        assert alert.state == alert_pb2.ALERT_STATE_OPEN
        assert alert.hit.hotlist_name == "stolen"
        assert alert.hit.kind == 1
        assert alert.event.best_crop.data == b"\xff\xd8jpeg"

        # Same revision again: duplicate, no new alert. Higher revision of the same pass: updated, no new alert.
        again = await ingest.stub.ReportReads(pb.ReportReadsRequest(events=[first]), metadata=ingest.metadata)
        assert again.results[0].status == 3
        assert not again.results[0].alerts
        later = plate_event("CA123456", event_id="pass-1", revision=2)
        newer = await ingest.stub.ReportReads(pb.ReportReadsRequest(events=[later]), metadata=ingest.metadata)
        assert newer.results[0].status == 2
        assert not newer.results[0].alerts

        # One batch, same event id twice, out of order: applied in revision order.
        batch = [
            plate_event("ZZ999", event_id="pass-2", revision=3),
            plate_event("ZZ999", event_id="pass-2", revision=1),
        ]
        mixed = await ingest.stub.ReportReads(pb.ReportReadsRequest(events=batch), metadata=ingest.metadata)
        assert [r.status for r in mixed.results] == [2, 1]

        # Without suppression (window 0), a second pass of the same plate raises a second alert.
        other = await ingest.stub.ReportReads(
            pb.ReportReadsRequest(events=[plate_event("CA 123456".replace(" ", ""), event_id="pass-3")]),
            metadata=ingest.metadata,
        )
        assert len(other.results[0].alerts) == 1

    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT revision FROM hotlist.reads WHERE event_id = 'pass-2'") == 3
        assert await connection.fetchval("SELECT count(*) FROM hotlist.alerts") == 2
        assert await connection.fetchval("SELECT crop FROM hotlist.reads WHERE event_id = 'pass-1'") == b"\xff\xd8jpeg"
    finally:
        await connection.close()


async def test_repeat_hits_are_suppressed_and_counted(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("hotlist", database_url=database_url, alert_suppression_window_seconds="600")
    async with channel_to(server) as channel:
        admin = caller(channel, tokens["hotlist-admin"])
        ingest = caller(channel, tokens["ingest-service"])
        await create_list(admin, "stolen")
        await add_plates(admin, "stolen", "CA123456")
        replies = [
            await ingest.stub.ReportReads(
                pb.ReportReadsRequest(events=[plate_event("CA123456", camera_id=f"cam-{i}")]), metadata=ingest.metadata
            )
            for i in range(3)
        ]
        assert [len(r.results[0].alerts) for r in replies] == [1, 0, 0]
        assert [r.results[0].suppressed_hit_count for r in replies] == [0, 1, 1]
        operator = caller(channel, tokens["operator"])
        alert_id = replies[0].results[0].alerts[0].alert_id
        acked = await operator.stub.AcknowledgeAlert(
            pb.AcknowledgeAlertRequest(alert_id=alert_id, outcome=alert_pb2.ALERT_OUTCOME_CONFIRMED),
            metadata=operator.metadata,
        )
        assert acked.alert.suppressed_count == 2
        assert acked.alert.HasField("last_suppressed_time")
        # Once the alert is acknowledged, the next hit raises a new alert.
        fourth = await ingest.stub.ReportReads(
            pb.ReportReadsRequest(events=[plate_event("CA123456")]), metadata=ingest.metadata
        )
        assert len(fourth.results[0].alerts) == 1


async def test_acknowledgement_is_idempotent_and_audited(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("hotlist", database_url=database_url)
    async with channel_to(server) as channel:
        admin = caller(channel, tokens["hotlist-admin"])
        ingest = caller(channel, tokens["ingest-service"])
        operator = caller(channel, tokens["operator"])
        await create_list(admin, "stolen")
        await add_plates(admin, "stolen", "CA123456", "GP555")
        reply = await ingest.stub.ReportReads(
            pb.ReportReadsRequest(events=[plate_event("CA123456"), plate_event("GP555")]), metadata=ingest.metadata
        )
        first, second = (r.alerts[0].alert_id for r in reply.results)
        metrics_url = f"http://127.0.0.1:{server.metrics_port}/metrics"
        assert "anpr_hotlist_open_alerts" in await fetch_text(metrics_url)

        reject = pb.AcknowledgeAlertRequest(
            alert_id=first,
            outcome=alert_pb2.ALERT_OUTCOME_REJECTED,
            rejection_reason=alert_pb2.REJECTION_REASON_VEHICLE_MISMATCH,
            note="white Hilux, listed as red Polo",
        )
        done = await operator.stub.AcknowledgeAlert(reject, metadata=operator.metadata)
        assert done.changed
        assert done.alert.state == alert_pb2.ALERT_STATE_REJECTED
        assert done.alert.acknowledgement.acknowledged_by == "test-operator"
        repeat = await operator.stub.AcknowledgeAlert(reject, metadata=operator.metadata)
        assert not repeat.changed
        assert repeat.alert.state == alert_pb2.ALERT_STATE_REJECTED

        cases = [
            (
                pb.AcknowledgeAlertRequest(alert_id=first, outcome=alert_pb2.ALERT_OUTCOME_CONFIRMED),
                grpc.StatusCode.FAILED_PRECONDITION,
            ),
            (
                pb.AcknowledgeAlertRequest(alert_id="999999", outcome=alert_pb2.ALERT_OUTCOME_CONFIRMED),
                grpc.StatusCode.NOT_FOUND,
            ),
            (
                pb.AcknowledgeAlertRequest(alert_id="'; --", outcome=alert_pb2.ALERT_OUTCOME_CONFIRMED),
                grpc.StatusCode.NOT_FOUND,
            ),
            (pb.AcknowledgeAlertRequest(alert_id=second), grpc.StatusCode.INVALID_ARGUMENT),
            (
                pb.AcknowledgeAlertRequest(alert_id=second, outcome=alert_pb2.ALERT_OUTCOME_REJECTED),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
            (
                pb.AcknowledgeAlertRequest(
                    alert_id=second,
                    outcome=alert_pb2.ALERT_OUTCOME_CONFIRMED,
                    rejection_reason=alert_pb2.REJECTION_REASON_MISREAD,
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
            ),
        ]
        for request, code in cases:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await operator.stub.AcknowledgeAlert(request, metadata=operator.metadata)
            assert refused.value.code() == code
        cancelled = await operator.stub.AcknowledgeAlert(
            pb.AcknowledgeAlertRequest(alert_id=second, outcome=alert_pb2.ALERT_OUTCOME_CANCELLED),
            metadata=operator.metadata,
        )
        assert cancelled.alert.state == alert_pb2.ALERT_STATE_CANCELLED

        auditor = caller(channel, tokens["auditor"])
        trail = await auditor.stub.GetAuditLog(
            pb.GetAuditLogRequest(actions=[audit_pb2.AUDIT_ACTION_ALERT_ACKNOWLEDGED]), metadata=auditor.metadata
        )
        assert sorted(r.target_id for r in trail.records) == sorted([first, second])


async def test_a_partial_reading_alerts_only_where_a_list_accepts_uncertain_matches(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("hotlist", database_url=database_url)
    async with channel_to(server) as channel:
        admin = caller(channel, tokens["hotlist-admin"])
        ingest = caller(channel, tokens["ingest-service"])
        await create_list(admin, "stolen", strictness=hotlist_pb2.MATCH_STRICTNESS_STANDARD)
        await create_list(admin, "watch", strictness=hotlist_pb2.MATCH_STRICTNESS_LENIENT)
        await add_plates(admin, "stolen", "CA12345")
        await add_plates(admin, "watch", "CA123456")

        # A bar hid one character of CA123456: the visible text equals another listed plate.
        partial = plate_event("CA12345", event_id="pass-partial")
        partial.reading.hidden_characters = 1
        reply = await ingest.stub.ReportReads(pb.ReportReadsRequest(events=[partial]), metadata=ingest.metadata)
        [result] = reply.results
        assert [(a.hit.hotlist_name, a.hit.entry.plate) for a in result.alerts] == [("watch", "CA123456")]
        assert result.alerts[0].event.reading.hidden_characters == 1

        # The same text read whole is an exact hit on the standard list.
        whole = await ingest.stub.ReportReads(
            pb.ReportReadsRequest(events=[plate_event("CA12345", event_id="pass-whole")]), metadata=ingest.metadata
        )
        assert [a.hit.hotlist_name for a in whole.results[0].alerts] == ["stolen"]

        # Match (an officer's ad-hoc query) applies the same rule.
        asked = plate_pb2.PlateReading(text="CA12345", confidence=0.9, hidden_characters=1)
        operator = caller(channel, tokens["operator"])
        matched = await operator.stub.Match(pb.MatchRequest(reading=asked), metadata=operator.metadata)
        assert [h.hotlist_name for h in matched.hits] == ["watch"]

        # A plate running off the frame's left edge: two characters unseen, too many for an edit; the visible ones
        # fit the listed plate with the hidden ones as a gap.
        await add_plates(admin, "watch", "ND827848")
        cut = plate_event("827848", event_id="pass-cut")
        cut.reading.hidden_characters = 1
        reply = await ingest.stub.ReportReads(pb.ReportReadsRequest(events=[cut]), metadata=ingest.metadata)
        [alert] = reply.results[0].alerts
        assert (alert.hit.entry.plate, alert.hit.kind) == ("ND827848", match_pb2.MATCH_KIND_PARTIAL)

        # Visible characters that fit two listed plates point at no one vehicle: no alert, and an officer who asks
        # for weak hits sees both (and CA12345, one edit away, on the standard list).
        await add_plates(admin, "watch", "CA123499")
        vague = plate_pb2.PlateReading(text="CA1234", confidence=0.9, hidden_characters=1)
        matched = await operator.stub.Match(pb.MatchRequest(reading=vague), metadata=operator.metadata)
        assert list(matched.hits) == []
        weak = await operator.stub.Match(
            pb.MatchRequest(reading=vague, include_weak_hits=True), metadata=operator.metadata
        )
        assert sorted((h.entry.plate, h.kind, h.meets_strictness) for h in weak.hits) == [
            ("CA12345", match_pb2.MATCH_KIND_EDIT_DISTANCE, False),
            ("CA123456", match_pb2.MATCH_KIND_PARTIAL, False),
            ("CA123499", match_pb2.MATCH_KIND_PARTIAL, False),
        ]


async def test_gap_matching_of_partial_reads_follows_the_service_settings(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("hotlist", database_url=database_url, partial_min_visible="0")
    async with channel_to(server) as channel:
        admin = caller(channel, tokens["hotlist-admin"])
        operator = caller(channel, tokens["operator"])
        await create_list(admin, "watch", strictness=hotlist_pb2.MATCH_STRICTNESS_LENIENT)
        await add_plates(admin, "watch", "ND827848")
        cut = plate_pb2.PlateReading(text="827848", confidence=0.9, hidden_characters=1)
        matched = await operator.stub.Match(
            pb.MatchRequest(reading=cut, include_weak_hits=True), metadata=operator.metadata
        )
        assert list(matched.hits) == []  # switched off: two hidden characters are beyond edit distance


async def test_bad_batches_store_nothing(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("hotlist", database_url=database_url, max_report_batch="5")
    async with channel_to(server) as channel:
        ingest = caller(channel, tokens["ingest-service"])
        for events in ([plate_event("CA123456")] * 6, []):  # over the batch limit; empty
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await ingest.stub.ReportReads(pb.ReportReadsRequest(events=events), metadata=ingest.metadata)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    connection = await asyncpg.connect(database_url)
    try:
        assert await connection.fetchval("SELECT count(*) FROM hotlist.reads") == 0
    finally:
        await connection.close()


async def test_a_bad_event_is_refused_alone_and_a_bad_gps_fix_costs_only_the_location(
    database_url: str, start_service: StartService, tokens: dict[str, str]
) -> None:
    server = await start_service("hotlist", database_url=database_url, max_plate_crop_bytes="100")
    async with channel_to(server) as channel:
        admin = caller(channel, tokens["hotlist-admin"])
        ingest = caller(channel, tokens["ingest-service"])
        await create_list(admin, "stolen")
        await add_plates(admin, "stolen", "CA123456", "GP55")
        bad = [
            plate_event("C"),  # too short to be a plate
            plate_event("CA 123"),  # not normalised
            plate_event("CA123", event_id=""),
            plate_event("CA123", event_id="x" * 200),
            plate_event("CA123", revision=0),
            plate_event("CA123", camera_id=""),
            plate_event("CA123", confidence=1.5),
        ]
        gps = plate_event("CA123456", event_id="bad-gps", lat_lon=(123.0, 18.4), crop=b"x" * 101)
        good = plate_event("GP55", event_id="good")
        batch = [bad[0], gps, *bad[1:4], good, *bad[4:]]
        metrics_url = f"http://127.0.0.1:{server.metrics_port}/metrics"
        before = await fetch_text(metrics_url)
        reply = await ingest.stub.ReportReads(pb.ReportReadsRequest(events=batch), metadata=ingest.metadata)
        by_status = [r.status for r in reply.results]
        rejected = read_pb2.READ_STATUS_REJECTED
        assert by_status == [rejected, 1, rejected, rejected, rejected, 1, rejected, rejected, rejected]
        assert "reading.text" in reply.results[0].rejection_message
        assert reply.results[1].rejection_message == ""
        # The event with the invalid fix is stored without it, and its hotlisted plate raises the alert.
        assert len(reply.results[1].alerts) == 1
        assert not reply.results[1].alerts[0].event.HasField("location")
        assert len(reply.results[5].alerts) == 1
        after = await fetch_text(metrics_url)
    for sample, increase in (
        ('anpr_hotlist_event_fields_dropped_total{field="location"}', 1),
        ('anpr_hotlist_event_fields_dropped_total{field="best_crop"}', 1),
        ('anpr_hotlist_reads_total{status="rejected"}', 7),
    ):
        assert metric_value(after, sample) - metric_value(before, sample) == increase, sample
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT event_id, latitude, crop FROM hotlist.reads ORDER BY event_id")
        assert [(r["event_id"], r["latitude"], r["crop"]) for r in rows] == [
            ("bad-gps", None, None),
            ("good", None, None),
        ]
    finally:
        await connection.close()
