-- Issue 19: the audit trail refuses TRUNCATE too, and becomes tamper-evident (a hash chain).
ALTER TABLE audit_log ADD COLUMN chain_position bigint, ADD COLUMN previous_hash bytea, ADD COLUMN row_hash bytea;

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- Tamper evidence: every row of the audit trail is chained to the one before it.
--
-- row_hash = sha256(previous_hash || content), content being the row's fields in a fixed JSON array (the time as
-- integer microseconds, so the session time zone cannot change it). chain_position numbers rows in the order
-- they were chained: a BEFORE INSERT trigger takes a transaction-level advisory lock, reads the last link and
-- computes the new one, so concurrent writers chain one after another (the lock is held until commit; audited
-- transactions are short). Whatever the caller passes for these columns is overwritten.
-- audit_log_first_broken() walks the chain and names the first row whose position, link or hash does not match:
-- an edited, inserted or deleted row (with the triggers disabled by an owner) is detected. Removing rows from
-- the end is not, which is why the head (position and hash) is exported for anchoring outside the database
-- (see docs/security.md).

CREATE FUNCTION audit_log_content(r hotlist.audit_log) RETURNS bytea
    LANGUAGE sql IMMUTABLE SET search_path = pg_catalog AS $$
    SELECT convert_to(jsonb_build_array(
        r.chain_position, r.audit_id, (extract(epoch FROM r.record_time) * 1000000)::bigint, r.actor,
        r.actor_roles, r.action, r.target_type, r.target_id, r.purpose, r.case_reference, r.request_id,
        r.details)::text, 'UTF8')
$$;

CREATE FUNCTION audit_log_chain() RETURNS trigger
    LANGUAGE plpgsql SET search_path = pg_catalog AS $$
DECLARE
    last_position bigint;
    last_hash bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('hotlist.audit_log chain'));
    SELECT chain_position, row_hash INTO last_position, last_hash
      FROM hotlist.audit_log ORDER BY chain_position DESC LIMIT 1;
    NEW.chain_position := coalesce(last_position, 0) + 1;
    NEW.previous_hash := coalesce(last_hash, '\x'::bytea);
    NEW.row_hash := sha256(NEW.previous_hash || hotlist.audit_log_content(NEW));
    RETURN NEW;
END;
$$;

CREATE FUNCTION audit_log_first_broken() RETURNS bigint
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog AS $$
DECLARE
    r hotlist.audit_log;
    expected_position bigint := 0;
    expected_previous bytea := '\x'::bytea;
BEGIN
    FOR r IN SELECT * FROM hotlist.audit_log ORDER BY chain_position LOOP
        expected_position := expected_position + 1;
        IF r.chain_position IS DISTINCT FROM expected_position
           OR r.previous_hash IS DISTINCT FROM expected_previous
           OR r.row_hash IS DISTINCT FROM sha256(expected_previous || hotlist.audit_log_content(r)) THEN
            RETURN r.audit_id;
        END IF;
        expected_previous := r.row_hash;
    END LOOP;
    RETURN NULL;
END;
$$;

-- Chain the rows written before this migration, in the order of their ids (the only update ever allowed).
ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update;
DO $$
DECLARE
    r hotlist.audit_log;
    position bigint := 0;
    previous bytea := '\x'::bytea;
BEGIN
    FOR r IN SELECT * FROM hotlist.audit_log ORDER BY audit_id LOOP
        position := position + 1;
        r.chain_position := position;
        r.previous_hash := previous;
        previous := sha256(previous || hotlist.audit_log_content(r));
        UPDATE hotlist.audit_log SET chain_position = position, previous_hash = r.previous_hash, row_hash = previous
         WHERE audit_id = r.audit_id;
    END LOOP;
END;
$$;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update;

ALTER TABLE audit_log ALTER COLUMN chain_position SET NOT NULL, ALTER COLUMN previous_hash SET NOT NULL,
    ALTER COLUMN row_hash SET NOT NULL;
CREATE UNIQUE INDEX audit_log_chain_position ON audit_log (chain_position);

CREATE TRIGGER audit_log_chain BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_chain();
