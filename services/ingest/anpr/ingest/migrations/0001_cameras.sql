-- Cameras known to ingest (anpr.ingest.v1.Camera). Frames from cameras not in this table are refused.
CREATE TABLE cameras (
    camera_id              text PRIMARY KEY CHECK (camera_id ~ '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$'),
    kind                   text NOT NULL CHECK (kind IN ('fixed', 'mobile', 'dash', 'body')),
    display_name           text NOT NULL DEFAULT '',
    -- A fixed camera has a location; a moving one has none (its frames carry GPS fixes instead).
    latitude               double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude              double precision CHECK (longitude BETWEEN -180 AND 180),
    view_direction_degrees double precision CHECK (view_direction_degrees >= 0 AND view_direction_degrees < 360),
    owner_unit             text NOT NULL DEFAULT '',
    description            text NOT NULL DEFAULT '',
    labels                 jsonb NOT NULL DEFAULT '{}'::jsonb,
    max_frame_bytes        bigint CHECK (max_frame_bytes > 0),
    max_frames_per_second  double precision CHECK (max_frames_per_second > 0),
    disabled               boolean NOT NULL DEFAULT false,
    create_time            timestamptz NOT NULL DEFAULT now(),
    update_time            timestamptz NOT NULL DEFAULT now(),
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);

CREATE INDEX cameras_kind ON cameras (kind);
CREATE INDEX cameras_owner_unit ON cameras (owner_unit);
