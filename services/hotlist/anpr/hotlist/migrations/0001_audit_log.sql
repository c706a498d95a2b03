-- Append-only audit trail (anpr.hotlist.v1.AuditRecord): every change to a hotlist, every acknowledgement and
-- every search of stored reads, with who did it, why and under which request. Required by POPIA accountability.
CREATE TABLE audit_log (
    audit_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    record_time    timestamptz NOT NULL DEFAULT now(),
    actor          text NOT NULL,
    actor_roles    text[] NOT NULL DEFAULT '{}',
    action         text NOT NULL,
    target_type    text NOT NULL DEFAULT '',
    target_id      text NOT NULL DEFAULT '',
    purpose        text NOT NULL DEFAULT '',
    case_reference text NOT NULL DEFAULT '',
    request_id     text NOT NULL DEFAULT '',
    details        jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX audit_log_time ON audit_log (record_time);
CREATE INDEX audit_log_actor_time ON audit_log (actor, record_time);

-- The trail is append-only: updates and deletes are refused for every role, including the service's own.
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
