-- SQLite's 0010_job_event_triggers.sql in PostgreSQL's dialect (see it for what it means): a job's
-- events are written by the database, in the statement that inserts the job or changes its state.

CREATE FUNCTION job_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_events (job_id, state, at, detail)
    VALUES (NEW.id, NEW.state, CASE WHEN TG_OP = 'INSERT' THEN NEW.created_at ELSE NEW.updated_at END, NULL);
    RETURN NULL;
END
$$;

CREATE TRIGGER job_received_event AFTER INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION job_event();

CREATE TRIGGER job_state_event AFTER UPDATE OF state ON jobs FOR EACH ROW
    WHEN (NEW.state IS DISTINCT FROM OLD.state) EXECUTE FUNCTION job_event();
