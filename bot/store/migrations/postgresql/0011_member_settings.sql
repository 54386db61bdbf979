-- SQLite's 0011_member_settings.sql in PostgreSQL's dialect (see it for what each part means):
-- members' own settings per server, and where each job's result goes.

CREATE TABLE member_settings (
    guild_id    BIGINT NOT NULL,
    user_id     BIGINT NOT NULL,
    mode        TEXT CHECK (mode IS NULL OR mode IN ('lite', 'standard', 'pro')),
    max_fps     DOUBLE PRECISION CHECK (max_fps IS NULL OR (max_fps >= 1 AND max_fps <= 60)),
    results     TEXT NOT NULL DEFAULT 'channel' CHECK (results IN ('channel', 'thread', 'dm')),
    ping        BOOLEAN NOT NULL DEFAULT TRUE,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

ALTER TABLE jobs ADD COLUMN deliver_to TEXT CHECK (deliver_to IS NULL OR deliver_to IN ('channel', 'thread', 'dm'));
ALTER TABLE jobs ADD COLUMN ping_owner BOOLEAN;
