-- A job's events are written by the database, in the statement that changes its state.
--
-- Every job's history (`job_events`) starts with `received` when the job is inserted, and gains
-- a row each time its `state` changes, stamped with the `updated_at` the change wrote. Written
-- here rather than by a second statement from the bot, so a state change is one statement
-- (one round trip) that can never leave its event out. The bot still adds a detail to the last
-- event itself when it has one.

CREATE TRIGGER job_received_event AFTER INSERT ON jobs
BEGIN
    INSERT INTO job_events (job_id, state, at, detail) VALUES (NEW.id, NEW.state, NEW.created_at, NULL);
END;

CREATE TRIGGER job_state_event AFTER UPDATE OF state ON jobs WHEN NEW.state IS NOT OLD.state
BEGIN
    INSERT INTO job_events (job_id, state, at, detail) VALUES (NEW.id, NEW.state, NEW.updated_at, NULL);
END;
