-- SQLite's 0009_instances_queue.sql in PostgreSQL's dialect (see it for what each part means):
-- processes' heartbeats, queued jobs' requests, and cancels passed on through the database.

CREATE TABLE instances (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    host        TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    beats       BIGINT NOT NULL DEFAULT 0,
    beat_at     TIMESTAMPTZ NOT NULL
);

ALTER TABLE jobs ADD COLUMN request JSONB;
ALTER TABLE jobs ADD COLUMN cancel_requested_by BIGINT;
