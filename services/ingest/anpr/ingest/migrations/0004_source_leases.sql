-- One owner per pulled source (issue 18): a lease per source row, and the owner's view of the source's state so
-- that every replica lists the same thing and a finished file is not played again after a restart.
-- owner/lease_expires: the replica id holding the lease and when it lapses (database clock). A replica claims a
-- source with one UPDATE ... WHERE owner = me OR lease_expires < now(), so a dead replica's lease simply times out.
ALTER TABLE sources
    ADD COLUMN owner              text,
    ADD COLUMN lease_expires      timestamptz NOT NULL DEFAULT '-infinity',
    -- anpr.ingest.v1.SourceState; 1 = CONNECTING. FINISHED (4) and FAILED (5) are final: never claimed again.
    ADD COLUMN state              smallint NOT NULL DEFAULT 1,
    ADD COLUMN state_message      text NOT NULL DEFAULT '',
    ADD COLUMN state_change_time  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN last_frame_time    timestamptz,
    ADD COLUMN frames_sampled     bigint NOT NULL DEFAULT 0,
    ADD COLUMN reconnect_attempts integer NOT NULL DEFAULT 0;

-- The claim scans the sources that still need a runner.
CREATE INDEX sources_claimable ON sources (lease_expires) WHERE state NOT IN (4, 5);
