-- Reconciling a job whose outcome at Magic Hour was unknown with what Magic Hour really charged.
--
-- 1. The ledger gains the kind 'reconcile': written once per job (the unique index
--    ledger_one_reconcile), in the same transaction that sets the job's charged_credits
--    (QuotaLedger.reconcile). `charged` is Magic Hour's charge and `amount` what the job's rows
--    added up to minus it, so they then add up to the charge. SQLite cannot alter a CHECK, so the
--    table is rebuilt as in 0003: same columns, same ids, same indexes and append-only trigger.
-- 2. Jobs reconciled before this migration (an 'adjust' row tied to the job, and
--    error_data.reconciled_charge) get their reconcile row and charged_credits. Its amount is 0
--    when their rows already add up to the charge (the usual case), else what makes them.

CREATE TABLE ledger_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL
                CHECK (kind IN ('reserve', 'topup', 'settle', 'refund', 'grant', 'adjust', 'reconcile')),
    -- NULL for grants and unattached adjustments, and once a deleted member's rows are anonymised.
    -- RESTRICT: a job cannot be deleted while ledger rows still point at it.
    job_id      INTEGER REFERENCES jobs (id) ON DELETE RESTRICT,
    guild_id    INTEGER,                  -- NULL for command-line jobs
    -- NULL: a deleted member's usage from an ended window, kept for server totals;
    -- negative: a deleted member's usage in the window still running, under a one-way token.
    user_id     INTEGER,
    mode        TEXT,                     -- the job's mode, copied so usage by mode survives deletion
    amount      INTEGER NOT NULL,
    charged     INTEGER CHECK (charged IS NULL OR charged >= 0),  -- settle and reconcile rows only
    period_at   TEXT NOT NULL,            -- decides the window; topup/settle/refund copy the reservation's
    at          TEXT NOT NULL,            -- when the row was written
    by_user_id  INTEGER,                  -- who granted, adjusted or reconciled
    note        TEXT,
    CHECK (kind <> 'reserve' OR amount <= 0),
    CHECK (kind <> 'topup' OR amount < 0),
    CHECK (kind <> 'refund' OR amount >= 0),
    CHECK (kind NOT IN ('reserve', 'topup', 'settle', 'refund', 'reconcile')
           OR job_id IS NOT NULL OR user_id IS NULL OR user_id < 0),
    CHECK (kind NOT IN ('settle', 'reconcile') OR charged IS NOT NULL)
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

-- At most one reservation, one of settle/refund, and one reconciliation per job, whoever calls.
CREATE UNIQUE INDEX ledger_one_reserve ON ledger (job_id) WHERE kind = 'reserve';
CREATE UNIQUE INDEX ledger_one_close ON ledger (job_id) WHERE kind IN ('settle', 'refund');
CREATE UNIQUE INDEX ledger_one_reconcile ON ledger (job_id) WHERE kind = 'reconcile';
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

-- (2) Jobs reconciled by the earlier command, counted in the window they were reconciled in.
INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, charged, period_at, at, note)
SELECT 'reconcile', j.id, j.guild_id, j.user_id, j.mode,
       -json_extract(j.error_data, '$.reconciled_charge')
           - COALESCE((SELECT SUM(l.amount) FROM ledger AS l WHERE l.job_id = j.id), 0),
       json_extract(j.error_data, '$.reconciled_charge'),
       j.updated_at, j.updated_at, 'reconciled before migration 0008'
FROM jobs AS j
WHERE j.error_code = 'unknown_at_magic_hour'
  AND CASE WHEN json_valid(j.error_data)
           THEN json_type(j.error_data, '$.reconciled_charge') = 'integer'
                AND json_extract(j.error_data, '$.reconciled_charge') >= 0
           ELSE 0 END;

UPDATE jobs SET charged_credits = (SELECT c.charged FROM ledger AS c WHERE c.job_id = jobs.id AND c.kind = 'reconcile')
WHERE EXISTS (SELECT 1 FROM ledger AS c WHERE c.job_id = jobs.id AND c.kind = 'reconcile');
