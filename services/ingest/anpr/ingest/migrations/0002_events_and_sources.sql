-- Plate events this ingest service emitted (latest revision per pass), for GetPlateEvents and delivery state.
-- No foreign key to cameras: events stay when a camera is deleted, until retention removes them.
CREATE TABLE plate_events (
    event_id          uuid PRIMARY KEY,
    revision          integer NOT NULL CHECK (revision > 0),
    camera_id         text NOT NULL,
    plate             text NOT NULL,
    first_seen        timestamptz NOT NULL,
    last_seen         timestamptz NOT NULL,
    -- The serialised anpr.common.v1.PlateEvent without its crop (kept apart: most reads skip it).
    event             bytea NOT NULL,
    best_crop         bytea,
    delivered         boolean NOT NULL DEFAULT false,
    deliver_time      timestamptz,
    delivery_attempts integer NOT NULL DEFAULT 0,
    emit_time         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX plate_events_last_seen ON plate_events (last_seen DESC, event_id DESC);
CREATE INDEX plate_events_camera ON plate_events (camera_id, last_seen DESC);
CREATE INDEX plate_events_plate ON plate_events (plate);

-- Pulled sources (AddSource), restarted when the service starts. Runtime state lives in memory and metrics.
CREATE TABLE sources (
    source_id   text PRIMARY KEY,
    camera_id   text NOT NULL REFERENCES cameras (camera_id) ON DELETE CASCADE,
    kind        smallint NOT NULL,
    uri         text NOT NULL,
    target_fps  double precision NOT NULL DEFAULT 0,
    loop        boolean NOT NULL DEFAULT false,
    create_time timestamptz NOT NULL DEFAULT now()
);
