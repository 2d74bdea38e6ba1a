-- Announce every change of the invalidation counters (config_version, failure_version), so that
-- server processes can keep them cached and skip a round trip per request.
CREATE FUNCTION creditbook_notify_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('creditbook_versions', NEW.name || '=' || NEW.value);
    RETURN NULL;
END
$$;
CREATE TRIGGER meta_notify AFTER UPDATE ON meta
FOR EACH ROW EXECUTE FUNCTION creditbook_notify_version();
