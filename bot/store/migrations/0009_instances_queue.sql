-- Several processes that know each other by heartbeat, queued jobs any process can run, and
-- cancels passed on through the database. See bot/store/instances.py and bot/store/jobs.py.
--
-- 1. `instances`: one row per running process (bot or command), made when it starts with a
--    random id that its job claims (`jobs.claimed_by`) then name. `beats` goes up by one at
--    every heartbeat; another process takes this one for dead when `beats` stands still for
--    JOB_LEASE_SECONDS by its own clock (so machines' clocks need not agree), deletes the row and
--    takes the jobs over. A claim by an id with no row is void. `beat_at` is the process's own
--    clock at its last heartbeat, for people reading the table.
-- 2. `jobs.request`: what a queued job needs to run (its inputs, attachment links included, and
--    options), as JSON, so whichever process has a free slot can run it. Cleared when the job
--    leaves `received`, so links are kept no longer than the job waits.
-- 3. `jobs.cancel_requested_by`: the member who pressed Cancel, recorded by whichever process
--    received the press; the process running the job reads it with its heartbeat and cancels.
-- `jobs.lease_until` stays for the claims of processes of the previous version (a rolling
-- upgrade): their claims hold until it passes; new claims leave it NULL.

CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    beats       INTEGER NOT NULL DEFAULT 0,
    beat_at     TEXT NOT NULL
);

ALTER TABLE jobs ADD COLUMN request TEXT;
ALTER TABLE jobs ADD COLUMN cancel_requested_by INTEGER;
