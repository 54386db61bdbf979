-- How long finished renders took at Magic Hour, so the poller can ask near the predicted finish,
-- and a one-row table the health check writes to prove the database still takes writes.
--
-- A render's end is only known to lie between two status reads: the last that still said it was
-- running (low_seconds after submission) and the first that said it was complete (high_seconds).
-- seconds is the middle of that interval. frames is the job's frame count as estimated at submission
-- (what the forecast has to go on for a new job), mode its generation mode. No member data: a
-- deleted member's job leaves its row with job_id NULL.

CREATE TABLE render_times (
    id            INTEGER PRIMARY KEY,
    job_id        INTEGER REFERENCES jobs (id) ON DELETE SET NULL,
    mode          TEXT NOT NULL,
    frames        INTEGER NOT NULL CHECK (frames > 0),
    low_seconds   REAL NOT NULL CHECK (low_seconds >= 0),
    high_seconds  REAL NOT NULL CHECK (high_seconds >= low_seconds),
    seconds       REAL NOT NULL CHECK (seconds >= low_seconds AND seconds <= high_seconds),
    finished_at   TEXT NOT NULL       -- UTC, fixed-width ISO 8601
);

CREATE INDEX render_times_by_mode ON render_times (mode, id);
CREATE INDEX render_times_by_job ON render_times (job_id);

CREATE TABLE store_heartbeat (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    beat_at     TEXT NOT NULL
);
