-- Jobs and the time of every state each entered.
-- Enumerations (mode, state) are checked in Python, not with CHECK constraints, so that adding a
-- state or a mode later does not mean rebuilding the table.

CREATE TABLE jobs (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id             INTEGER NOT NULL,
    guild_id            INTEGER,            -- NULL for command-line jobs
    channel_id          INTEGER,
    video_filename      TEXT,
    video_size          INTEGER CHECK (video_size IS NULL OR video_size >= 0),
    audio_filename      TEXT,
    audio_size          INTEGER CHECK (audio_size IS NULL OR audio_size >= 0),
    youtube_url         TEXT,
    start_seconds       REAL,
    end_seconds         REAL,
    mode                TEXT NOT NULL,
    max_fps             REAL,
    name                TEXT,
    state               TEXT NOT NULL,
    project_id          TEXT,               -- Magic Hour's id, once submitted
    estimated_credits   INTEGER CHECK (estimated_credits IS NULL OR estimated_credits >= 0),
    charged_credits     INTEGER CHECK (charged_credits IS NULL OR charged_credits >= 0),
    error_code          TEXT,
    error_message       TEXT,
    delivery_kind       TEXT,
    delivery_message_id INTEGER,
    status_channel_id   INTEGER,
    status_message_id   INTEGER,
    created_at          TEXT NOT NULL,      -- UTC, fixed-width ISO 8601
    updated_at          TEXT NOT NULL
);

CREATE INDEX jobs_by_member ON jobs (guild_id, user_id, id);
CREATE INDEX jobs_by_guild ON jobs (guild_id, created_at);
CREATE INDEX jobs_by_user ON jobs (user_id);
-- Small: only live jobs are in it, which is what a restart reloads. Its WHERE must match
-- jobs._TERMINAL_SQL word for word, or SQLite will not use it.
CREATE INDEX jobs_unfinished ON jobs (id) WHERE state NOT IN ('canceled', 'done', 'failed');

CREATE TABLE job_events (
    id      INTEGER PRIMARY KEY,
    job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    state   TEXT NOT NULL,
    at      TEXT NOT NULL,
    detail  TEXT
);

CREATE INDEX job_events_by_job ON job_events (job_id, id);
