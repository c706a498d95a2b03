"""Vehicle-pass tracking: pure code that turns per-frame plate reads into one plate event per pass.

Nothing here touches gRPC, the database or the clock; the pipeline feeds it reads with capture times and turns
the :class:`~anpr.ingest.tracking.model.PassEvent` values it returns into protobuf messages.
"""
