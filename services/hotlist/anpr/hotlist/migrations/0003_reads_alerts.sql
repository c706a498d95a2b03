-- Stored reads (plate events at their highest revision), the alerts they raised, and the alert stream.
CREATE TABLE reads (
    event_id            text PRIMARY KEY,
    revision            integer NOT NULL,
    camera_id           text NOT NULL,
    plate               text NOT NULL DEFAULT '',
    plate_folded        text NOT NULL DEFAULT '',
    alternatives        text[] NOT NULL DEFAULT '{}',
    alternatives_folded text[] NOT NULL DEFAULT '{}',
    confidence          real NOT NULL DEFAULT 0,
    first_seen          timestamptz NOT NULL,
    last_seen           timestamptz NOT NULL,
    latitude            double precision,
    longitude           double precision,
    event               bytea NOT NULL,
    crop                bytea,
    has_hits            boolean NOT NULL DEFAULT false,
    store_time          timestamptz NOT NULL DEFAULT now(),
    update_time         timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX reads_last_seen ON reads (last_seen, event_id);
CREATE INDEX reads_plate ON reads (plate, last_seen);
CREATE INDEX reads_camera ON reads (camera_id, last_seen);
CREATE INDEX reads_retention ON reads (has_hits, last_seen);

CREATE TABLE alerts (
    alert_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id             text NOT NULL REFERENCES reads ON DELETE CASCADE,
    entry_id             bigint NOT NULL,
    hotlist_id           bigint NOT NULL,
    hotlist_name         text NOT NULL,
    priority             integer NOT NULL,
    camera_id            text NOT NULL,
    plate                text NOT NULL,
    hit                  jsonb NOT NULL,
    raise_time           timestamptz NOT NULL DEFAULT now(),
    state                integer NOT NULL DEFAULT 1,
    outcome              integer NOT NULL DEFAULT 0,
    rejection_reason     integer NOT NULL DEFAULT 0,
    note                 text NOT NULL DEFAULT '',
    acknowledged_by      text NOT NULL DEFAULT '',
    acknowledge_time     timestamptz,
    suppressed_count     integer NOT NULL DEFAULT 0,
    last_suppressed_time timestamptz,
    UNIQUE (event_id, entry_id)
);

CREATE INDEX alerts_repeat ON alerts (hotlist_id, plate, raise_time) WHERE state = 1;
CREATE INDEX alerts_open ON alerts (state) WHERE state = 1;

-- The alert stream: one row per change (raised, acknowledged, repeat suppressed), numbered by `position`.
--
-- Positions are dense and follow commit order: a writer takes the next numbers from `alert_stream_head` as the
-- last statement of its transaction, and the row lock on the head keeps any other writer from numbering until
-- the first commits (or aborts, which gives its numbers back). So when a reader sees position p, every position
-- below p is already visible, and "deliver everything after my cursor, in position order" can neither skip a row
-- committed late nor deliver one twice. A plain sequence would not do: its numbers are handed out at insert
-- time, and a transaction holding a lower number may commit after a reader has moved past it.
CREATE TABLE alert_stream (
    position    bigint PRIMARY KEY,
    alert_id    bigint NOT NULL REFERENCES alerts ON DELETE CASCADE,
    change      integer NOT NULL,
    change_time timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX alert_stream_alert ON alert_stream (alert_id);

CREATE TABLE alert_stream_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    position  bigint NOT NULL
);

INSERT INTO alert_stream_head (position) VALUES (0);

-- Whether a point lies inside a simple polygon (ray casting in latitude/longitude), for area searches.
CREATE FUNCTION point_in_polygon(lat double precision, lon double precision, lats double precision[],
                                 lons double precision[]) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    inside boolean := false;
    n integer := array_length(lats, 1);
    j integer;
BEGIN
    IF n IS NULL OR n < 3 THEN
        RETURN false;
    END IF;
    j := n;
    FOR i IN 1..n LOOP
        IF ((lats[i] > lat) <> (lats[j] > lat))
           AND (lon < (lons[j] - lons[i]) * (lat - lats[i]) / (lats[j] - lats[i]) + lons[i]) THEN
            inside := NOT inside;
        END IF;
        j := i;
    END LOOP;
    RETURN inside;
END;
$$;

-- Great-circle distance in metres (haversine), for circle searches.
CREATE FUNCTION distance_meters(lat1 double precision, lon1 double precision, lat2 double precision,
                                lon2 double precision) RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT 2 * 6371008.8 * asin(sqrt(
        power(sin(radians(lat2 - lat1) / 2), 2)
        + cos(radians(lat1)) * cos(radians(lat2)) * power(sin(radians(lon2 - lon1) / 2), 2)))
$$;
