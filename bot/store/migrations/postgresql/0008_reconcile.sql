-- Reconciling a job whose outcome at Magic Hour was unknown: SQLite's 0008_reconcile.sql in
-- PostgreSQL's dialect.
--
-- 1. The ledger gains the kind 'reconcile', at most one per job (ledger_one_reconcile), carrying
--    Magic Hour's charge. PostgreSQL alters the CHECKs in place (SQLite rebuilds the table).
-- 2. Jobs reconciled before this migration (an 'adjust' row tied to the job, and
--    error_data.reconciled_charge) get their reconcile row and charged_credits. Its amount is 0
--    when their rows already add up to the charge (the usual case), else what makes them.

ALTER TABLE ledger DROP CONSTRAINT ledger_kind;
ALTER TABLE ledger ADD CONSTRAINT ledger_kind
    CHECK (kind IN ('reserve', 'topup', 'settle', 'refund', 'grant', 'adjust', 'reconcile'));
ALTER TABLE ledger DROP CONSTRAINT ledger_member;
ALTER TABLE ledger ADD CONSTRAINT ledger_member
    CHECK (kind NOT IN ('reserve', 'topup', 'settle', 'refund', 'reconcile')
           OR job_id IS NOT NULL OR user_id IS NULL OR user_id < 0);
ALTER TABLE ledger ADD CONSTRAINT ledger_reconcile_charged CHECK (kind <> 'reconcile' OR charged IS NOT NULL);

CREATE UNIQUE INDEX ledger_one_reconcile ON ledger (job_id) WHERE kind = 'reconcile';

-- (2) Jobs reconciled by the earlier command, counted in the window they were reconciled in.
INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, charged, period_at, at, note)
SELECT 'reconcile', j.id, j.guild_id, j.user_id, j.mode,
       -(j.error_data ->> 'reconciled_charge')::bigint
           - COALESCE((SELECT SUM(l.amount) FROM ledger AS l WHERE l.job_id = j.id), 0),
       (j.error_data ->> 'reconciled_charge')::bigint,
       j.updated_at, j.updated_at, 'reconciled before migration 0008'
FROM jobs AS j
WHERE j.error_code = 'unknown_at_magic_hour'
  AND jsonb_typeof(j.error_data -> 'reconciled_charge') = 'number'
  AND (j.error_data ->> 'reconciled_charge') ~ '^[0-9]+$';

UPDATE jobs SET charged_credits = (SELECT c.charged FROM ledger AS c WHERE c.job_id = jobs.id AND c.kind = 'reconcile')
WHERE EXISTS (SELECT 1 FROM ledger AS c WHERE c.job_id = jobs.id AND c.kind = 'reconcile');
