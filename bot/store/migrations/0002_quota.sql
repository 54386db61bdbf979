-- The credit ledger, and the limits set by server managers.
-- Sign convention and window rules: see bot/store/models.py.

CREATE TABLE ledger (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL CHECK (kind IN ('reserve', 'settle', 'refund', 'grant', 'adjust')),
    -- NULL for grants and unattached adjustments, and once a deleted member's rows are anonymised.
    -- RESTRICT: a job cannot be deleted while ledger rows still point at it.
    job_id      INTEGER REFERENCES jobs (id) ON DELETE RESTRICT,
    guild_id    INTEGER,                  -- NULL for command-line jobs
    user_id     INTEGER,                  -- NULL: a deleted member's usage, kept for server totals
    mode        TEXT,                     -- the job's mode, copied so usage by mode survives deletion
    amount      INTEGER NOT NULL,
    charged     INTEGER CHECK (charged IS NULL OR charged >= 0),  -- settle rows only
    period_at   TEXT NOT NULL,            -- decides the window; settle/refund copy the reservation's
    at          TEXT NOT NULL,            -- when the row was written
    by_user_id  INTEGER,                  -- who granted or adjusted
    note        TEXT,
    CHECK (kind <> 'reserve' OR amount <= 0),
    CHECK (kind <> 'refund' OR amount >= 0),
    CHECK (kind NOT IN ('reserve', 'settle', 'refund') OR job_id IS NOT NULL OR user_id IS NULL),
    CHECK (kind <> 'settle' OR charged IS NOT NULL)
);

-- At most one reservation per job, and at most one of settle/refund per job, whoever calls.
CREATE UNIQUE INDEX ledger_one_reserve ON ledger (job_id) WHERE kind = 'reserve';
CREATE UNIQUE INDEX ledger_one_close ON ledger (job_id) WHERE kind IN ('settle', 'refund');
CREATE INDEX ledger_by_job ON ledger (job_id);
-- Covering indexes: a window's sums (member, server pool, bot budget) read only the index.
CREATE INDEX ledger_by_member ON ledger (guild_id, user_id, period_at, kind, amount);
CREATE INDEX ledger_by_guild ON ledger (guild_id, period_at, kind, amount);
CREATE INDEX ledger_by_period ON ledger (period_at, kind, amount);

-- The ledger is append-only: what a row says about credits never changes. Only its attribution
-- (user_id, job_id, by_user_id, note) may be cleared, when a member's data is deleted.
CREATE TRIGGER ledger_append_only
BEFORE UPDATE OF kind, guild_id, mode, amount, charged, period_at, at ON ledger
BEGIN
    SELECT RAISE(ABORT, 'ledger rows are append-only');
END;

CREATE TABLE member_limits (
    guild_id    INTEGER NOT NULL,
    user_id     INTEGER NOT NULL,
    credits     INTEGER NOT NULL CHECK (credits >= 0),
    set_by      INTEGER,
    set_at      TEXT NOT NULL,
    PRIMARY KEY (guild_id, user_id)
);

CREATE INDEX member_limits_by_user ON member_limits (user_id);

CREATE TABLE role_limits (
    guild_id    INTEGER NOT NULL,
    role_id     INTEGER NOT NULL,
    credits     INTEGER NOT NULL CHECK (credits >= 0),
    set_by      INTEGER,
    set_at      TEXT NOT NULL,
    PRIMARY KEY (guild_id, role_id)
);

-- A server's own settings; NULL means "the bot's default".
CREATE TABLE guild_settings (
    guild_id                INTEGER PRIMARY KEY,
    default_member_credits  INTEGER CHECK (default_member_credits IS NULL OR default_member_credits >= 0),
    pool_credits            INTEGER CHECK (pool_credits IS NULL OR pool_credits >= 0),
    allowed_modes           TEXT,       -- comma-separated GenerationMode values
    max_clip_seconds        REAL CHECK (max_clip_seconds IS NULL OR max_clip_seconds > 0),
    max_active_jobs         INTEGER CHECK (max_active_jobs IS NULL OR max_active_jobs >= 1),
    updated_at              TEXT NOT NULL
);
