-- Every change to the allowlist is announced on the channel
-- `sealchain_clients`, in the transaction that makes it, so that every node
-- process on this database can keep the allowlist in memory instead of
-- asking the database for each message (docs/architecture.md, "The
-- allowlist cache"). A trigger rather than a NOTIFY in the admin routes, so
-- that an operator's own SQL is announced too.
--
-- Payloads: '+<hex client id>' (added), '-<hex client id>' (removed),
-- '*' (anything else: an UPDATE or a TRUNCATE; listeners reload the list).
CREATE FUNCTION sealchain_clients_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('sealchain_clients', '+' || encode(NEW.client_id, 'hex'));
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('sealchain_clients', '-' || encode(OLD.client_id, 'hex'));
    ELSE
        PERFORM pg_notify('sealchain_clients', '*');
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION sealchain_clients_changed();
CREATE TRIGGER clients_truncated AFTER TRUNCATE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION sealchain_clients_changed();
