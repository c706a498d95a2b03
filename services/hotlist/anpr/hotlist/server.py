"""Process entry point of the hotlist service: build dependencies, serve, shut down in order.

Start-up: pool -> migrations -> match index loaded from PostgreSQL -> LISTEN connection -> background tasks
(index sync, alert hub, retention) -> server. Shutdown runs the other way round: the server stops first (in-flight
calls finish), then the background tasks, then the LISTEN connection, then the pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from importlib.resources import files

from anpr.api.hotlist.v1 import hotlist_service_pb2_grpc
from anpr.hotlist.access import ACCESS_POLICY, SERVICE_NAME
from anpr.hotlist.db import ALERTS_CHANNEL, LISTS_CHANNEL
from anpr.hotlist.gaps import GapRules
from anpr.hotlist.hits import Matcher
from anpr.hotlist.importing import Importer
from anpr.hotlist.listener import Listener
from anpr.hotlist.lists import HotlistCatalog
from anpr.hotlist.matching import MatchIndex, MatchRules, Strictness
from anpr.hotlist.plates import Folding
from anpr.hotlist.reads import ReadRecorder
from anpr.hotlist.retention import RetentionJob, RetentionPolicy
from anpr.hotlist.search import ReadSearch
from anpr.hotlist.servicer import Core, HotlistServicer
from anpr.hotlist.settings import HotlistSettings
from anpr.hotlist.subscriptions import AlertHub
from anpr.hotlist.sync import IndexSync
from anpr.runtime.entrypoint import run_service
from anpr.runtime.provisioning import open_service_database
from anpr.runtime.server import ServiceServer

DATABASE_SCHEMA = "hotlist"


@asynccontextmanager
async def build(settings: HotlistSettings) -> AsyncIterator[ServiceServer]:
    """Open the service's resources and yield its server, not yet started; resources close on exit."""
    async with AsyncExitStack() as resources:
        pool = await resources.enter_async_context(
            open_service_database(settings, DATABASE_SCHEMA, files("anpr.hotlist") / "migrations")
        )
        folding = Folding(settings.confusion_classes)
        gaps = GapRules(
            settings.partial_min_visible, settings.partial_max_gap, max_alerting=settings.partial_max_alerting
        )
        rules = MatchRules(folding, settings.edit_distance_min_length_1, settings.edit_distance_min_length_2, gaps)
        index = MatchIndex(rules)
        sync = IndexSync(pool, index, Strictness[settings.default_strictness.upper()], settings.index_poll_seconds)
        hub = AlertHub(
            pool, settings.subscriber_queue_size, settings.replay_page_size, settings.subscriber_heartbeat_seconds
        )
        listener = Listener(
            pool, {LISTS_CHANNEL: sync.notified, ALERTS_CHANNEL: hub.poke}, [sync.reconnected, hub.poke]
        )
        keep_without = timedelta(days=settings.retention_reads_without_hits_days)
        keep_with = timedelta(days=settings.retention_reads_with_hits_days)
        retention = RetentionJob(
            pool,
            RetentionPolicy(keep_without, keep_with, settings.retention_batch_size),
            settings.retention_interval_seconds,
        )
        # Listen before loading, so a change committed during the load is not missed (it is applied twice at worst).
        await listener.start()
        resources.push_async_callback(listener.close)
        await sync.load_all()
        sync.start()
        resources.push_async_callback(sync.stop)
        await hub.start()
        resources.push_async_callback(hub.stop)
        retention.start()
        resources.push_async_callback(retention.stop)
        matcher = Matcher(index)
        core = Core(
            pool=pool,
            catalog=HotlistCatalog(pool, sync, settings.max_upsert_batch),
            importer=Importer(
                pool, sync, settings.max_import_rows, settings.max_import_errors, settings.max_concurrent_imports
            ),
            matcher=matcher,
            recorder=ReadRecorder(
                pool,
                matcher,
                folding,
                settings.max_report_batch,
                settings.max_plate_crop_bytes,
                settings.alert_suppression_window_seconds,
            ),
            hub=hub,
            search=ReadSearch(pool, folding, keep_without, keep_with),
        )
        server = ServiceServer("hotlist", settings, ACCESS_POLICY)
        # Alert streams never end on their own: without this a stop would hold alerts for the whole grace period.
        server.on_drain(lambda grace: hub.close_subscriptions())
        server.add(
            HotlistServicer(core, settings), hotlist_service_pb2_grpc.add_HotlistServiceServicer_to_server, SERVICE_NAME
        )
        # Stop serving before the tasks and connections the handlers use go away.
        resources.push_async_callback(server.stop)
        yield server


async def serve(settings: HotlistSettings) -> None:
    """Run the hotlist service until SIGTERM, then close its resources."""
    async with build(settings) as server:
        await server.run()


PURPOSE = (
    "The hotlist service: keeps hotlists, matches plate reads against them, raises and streams alerts, "
    "stores reads for searches with a stated purpose, and keeps the audit trail."
    " Settings come from ANPR_HOTLIST_* environment variables."
)


def main(argv: Sequence[str] | None = None) -> None:
    """Console script ``anpr-hotlist`` (``argv``: the command line, default ``sys.argv[1:]``; only ``--help``)."""
    run_service("hotlist", HotlistSettings, serve, purpose=PURPOSE, argv=argv)
