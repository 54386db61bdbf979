-- Top-ups, errors as data, forgotten members' tokens.
--
-- 1. The ledger gains the kind 'topup' (a job holds more when Magic Hour's create answer costs
--    more than the estimate). SQLite cannot alter a CHECK, so the table is rebuilt: same columns,
--    same ids, same indexes and append-only trigger. The member check also admits a deleted
--    member's usage kept under a negative one-way token (job gone, user_id < 0) until its window ends.
-- 2. Jobs gain error_data (a JSON object: a code's numbers, never a sentence; error_message stays
--    for old rows and is no longer written) and role_ids (the roles a reservation was checked
--    with, so a top-up is checked against the same allowance).
-- 3. A per-database random secret keys the one-way tokens of deleted members.
-- 4. Credits close when the render completes (downloading), not at delivery: live jobs already past
--    that point are settled here to the charge the old engine recorded with them.

CREATE TABLE ledger_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL CHECK (kind IN ('reserve', 'topup', 'settle', 'refund', 'grant', 'adjust')),
    -- NULL for grants and unattached adjustments, and once a deleted member's rows are anonymised.
    -- RESTRICT: a job cannot be deleted while ledger rows still point at it.
    job_id      INTEGER REFERENCES jobs (id) ON DELETE RESTRICT,
    guild_id    INTEGER,                  -- NULL for command-line jobs
    -- NULL: a deleted member's usage from an ended window, kept for server totals;
    -- negative: a deleted member's usage in the window still running, under a one-way token.
    user_id     INTEGER,
    mode        TEXT,                     -- the job's mode, copied so usage by mode survives deletion
    amount      INTEGER NOT NULL,
    charged     INTEGER CHECK (charged IS NULL OR charged >= 0),  -- settle rows only
    period_at   TEXT NOT NULL,            -- decides the window; topup/settle/refund copy the reservation's
    at          TEXT NOT NULL,            -- when the row was written
    by_user_id  INTEGER,                  -- who granted or adjusted
    note        TEXT,
    CHECK (kind <> 'reserve' OR amount <= 0),
    CHECK (kind <> 'topup' OR amount < 0),
    CHECK (kind <> 'refund' OR amount >= 0),
    CHECK (kind NOT IN ('reserve', 'topup', 'settle', 'refund') OR job_id IS NOT NULL OR user_id IS NULL OR user_id < 0),
    CHECK (kind <> 'settle' OR charged IS NOT NULL)
);

INSERT INTO ledger_new (id, kind, job_id, guild_id, user_id, mode, amount, charged, period_at, at, by_user_id, note)
SELECT id, kind, job_id, guild_id, user_id, mode, amount, charged, period_at, at, by_user_id, note FROM ledger;

-- Keep AUTOINCREMENT's promise (no id is ever reused, even one whose row was deleted).
INSERT INTO sqlite_sequence (name, seq)
SELECT 'ledger_new', 0 WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'ledger_new');
UPDATE sqlite_sequence
SET seq = MAX(seq, COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'ledger'), 0))
WHERE name = 'ledger_new';

DROP TABLE ledger;
ALTER TABLE ledger_new RENAME TO ledger;

-- At most one reservation per job, and at most one of settle/refund per job, whoever calls.
CREATE UNIQUE INDEX ledger_one_reserve ON ledger (job_id) WHERE kind = 'reserve';
CREATE UNIQUE INDEX ledger_one_close ON ledger (job_id) WHERE kind IN ('settle', 'refund');
CREATE INDEX ledger_by_job ON ledger (job_id);
-- Covering indexes: a window's sums (member, server pool, bot budget) read only the index.
CREATE INDEX ledger_by_member ON ledger (guild_id, user_id, period_at, kind, amount);
CREATE INDEX ledger_by_guild ON ledger (guild_id, period_at, kind, amount);
CREATE INDEX ledger_by_period ON ledger (period_at, kind, amount);
-- Small: only deleted members' rows still under a token, which the sweep looks for.
CREATE INDEX ledger_forgotten ON ledger (period_at) WHERE user_id < 0;

-- The ledger is append-only: what a row says about credits never changes. Only its attribution
-- (user_id, job_id, by_user_id, note) may change, when a member's data is deleted.
CREATE TRIGGER ledger_append_only
BEFORE UPDATE OF kind, guild_id, mode, amount, charged, period_at, at ON ledger
BEGIN
    SELECT RAISE(ABORT, 'ledger rows are append-only');
END;

ALTER TABLE jobs ADD COLUMN error_data TEXT;  -- a JSON object, or NULL
ALTER TABLE jobs ADD COLUMN role_ids TEXT;    -- comma-separated role ids the reservation used

CREATE TABLE store_secrets (
    name    TEXT PRIMARY KEY,
    value   BLOB NOT NULL
);

INSERT INTO store_secrets (name, value) VALUES ('member_token', randomblob(32));

-- (4) Settle what the old engine left open past the render: at the charge it recorded, else at
-- what was reserved (no top-ups existed before this migration).
INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, charged, period_at, at, note)
SELECT 'settle', r.job_id, r.guild_id, r.user_id, r.mode,
       -r.amount - COALESCE(j.charged_credits, -r.amount), COALESCE(j.charged_credits, -r.amount),
       r.period_at, j.updated_at, 'settled by migration 0003'
FROM ledger AS r JOIN jobs AS j ON j.id = r.job_id
WHERE r.kind = 'reserve' AND j.state IN ('downloading', 'delivering')
  AND NOT EXISTS (SELECT 1 FROM ledger AS c WHERE c.job_id = r.job_id AND c.kind IN ('settle', 'refund'));

UPDATE jobs SET charged_credits = (SELECT c.charged FROM ledger AS c WHERE c.job_id = jobs.id AND c.kind = 'settle')
WHERE state IN ('downloading', 'delivering') AND charged_credits IS NULL
  AND EXISTS (SELECT 1 FROM ledger AS c WHERE c.job_id = jobs.id AND c.kind = 'settle');
