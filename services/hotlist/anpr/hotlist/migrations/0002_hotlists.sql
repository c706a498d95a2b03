-- Hotlists and their entries (anpr.hotlist.v1.Hotlist / HotlistEntry).
--
-- Replicas keep an in-memory match index in step with these tables without rereading them: every change to a
-- list happens in a transaction that first locks the list's row and bumps its `revision`, and stamps the entries
-- it writes (or the tombstones of those it deletes) with that revision. The row lock makes revisions of one list
-- commit in order, so "everything with a revision above the one I have" never skips a late commit. A REPLACE
-- import bumps `epoch` instead, which tells replicas to reload the whole list.
CREATE TABLE hotlists (
    hotlist_id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                   text NOT NULL UNIQUE,
    display_name           text NOT NULL DEFAULT '',
    description            text NOT NULL DEFAULT '',
    source                 text NOT NULL DEFAULT '',
    priority               integer NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 100),
    default_action         integer NOT NULL DEFAULT 0,
    default_instructions   text NOT NULL DEFAULT '',
    active                 boolean NOT NULL DEFAULT true,
    strictness             integer NOT NULL DEFAULT 0,
    min_match_score        real NOT NULL DEFAULT 0 CHECK (min_match_score BETWEEN 0 AND 1),
    suppression_seconds    double precision CHECK (suppression_seconds >= 0),
    default_ttl_seconds    double precision CHECK (default_ttl_seconds > 0),
    entry_count            bigint NOT NULL DEFAULT 0,
    revision               bigint NOT NULL DEFAULT 0,
    epoch                  bigint NOT NULL DEFAULT 0,
    create_time            timestamptz NOT NULL DEFAULT now(),
    created_by             text NOT NULL DEFAULT '',
    update_time            timestamptz NOT NULL DEFAULT now(),
    updated_by             text NOT NULL DEFAULT ''
);

CREATE TABLE entries (
    entry_id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hotlist_id         bigint NOT NULL REFERENCES hotlists ON DELETE CASCADE,
    target             text NOT NULL,
    is_pattern         boolean NOT NULL,
    reason             text NOT NULL DEFAULT '',
    make               text NOT NULL DEFAULT '',
    model              text NOT NULL DEFAULT '',
    colour             text NOT NULL DEFAULT '',
    notes              text NOT NULL DEFAULT '',
    external_reference text NOT NULL DEFAULT '',
    action             integer NOT NULL DEFAULT 0,
    instructions       text NOT NULL DEFAULT '',
    expire_time        timestamptz,
    added_by           text NOT NULL DEFAULT '',
    add_time           timestamptz NOT NULL DEFAULT now(),
    updated_by         text NOT NULL DEFAULT '',
    update_time        timestamptz NOT NULL DEFAULT now(),
    revision           bigint NOT NULL DEFAULT 0,
    UNIQUE (hotlist_id, target)
);

CREATE INDEX entries_revision ON entries (hotlist_id, revision);

CREATE TABLE entry_tombstones (
    hotlist_id  bigint NOT NULL,
    entry_id    bigint NOT NULL,
    revision    bigint NOT NULL,
    delete_time timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX entry_tombstones_revision ON entry_tombstones (hotlist_id, revision);
CREATE INDEX entry_tombstones_time ON entry_tombstones (delete_time);
