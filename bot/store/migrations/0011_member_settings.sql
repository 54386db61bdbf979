-- Members' own settings, and where each job's result goes. See bot/store/member_settings.py.
--
-- 1. member_settings: one row per member per server who changed a setting with
--    /lipsync-settings: the mode and frame-rate cap /lipsync uses when the member chooses none
--    (NULL: the bot's), where their results go ('channel', 'thread' or 'dm') and whether a
--    result pings them. Deleted by /forget-me.
-- 2. jobs.deliver_to and jobs.ping_owner: the member's choice when the job started, kept with
--    the job so its result goes where they asked even if they change their settings meanwhile, or
--    the bot restarts. NULL (jobs from before, or from the command line): the channel, with a ping.

CREATE TABLE member_settings (
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    mode        TEXT CHECK (mode IS NULL OR mode IN ('lite', 'standard', 'pro')),
    max_fps     REAL CHECK (max_fps IS NULL OR (max_fps >= 1 AND max_fps <= 60)),
    results     TEXT NOT NULL DEFAULT 'channel' CHECK (results IN ('channel', 'thread', 'dm')),
    ping        INTEGER NOT NULL DEFAULT 1 CHECK (ping IN (0, 1)),
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

ALTER TABLE jobs ADD COLUMN deliver_to TEXT CHECK (deliver_to IS NULL OR deliver_to IN ('channel', 'thread', 'dm'));
ALTER TABLE jobs ADD COLUMN ping_owner INTEGER CHECK (ping_owner IS NULL OR ping_owner IN (0, 1));
