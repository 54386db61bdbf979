-- Top-ups, errors as data, forgotten members' tokens: SQLite's 0003 in PostgreSQL's dialect.
--
-- 1. The ledger gains the kind 'topup'. PostgreSQL alters a CHECK in place (SQLite rebuilt the
--    table): same ids, same indexes, same trigger. The member check also admits a deleted
--    member's usage kept under a negative one-way token (job gone, user_id < 0).
-- 2. Jobs gain error_data (a JSON object: a code's numbers, never a sentence) and role_ids.
-- 3. A per-database random secret keys the one-way tokens of deleted members (gen_random_uuid
--    draws from the server's strong random source; two of them, hashed, make 32 bytes).
-- 4. Credits close when the render completes (downloading): live jobs already past that point
--    are settled to the charge the old engine recorded (kept for parity; a PostgreSQL database
--    never held such jobs).

ALTER TABLE ledger DROP CONSTRAINT ledger_kind;
ALTER TABLE ledger ADD CONSTRAINT ledger_kind
    CHECK (kind IN ('reserve', 'topup', 'settle', 'refund', 'grant', 'adjust'));
ALTER TABLE ledger ADD CONSTRAINT ledger_topup_negative CHECK (kind <> 'topup' OR amount < 0);
ALTER TABLE ledger DROP CONSTRAINT ledger_member;
ALTER TABLE ledger ADD CONSTRAINT ledger_member
    CHECK (kind NOT IN ('reserve', 'topup', 'settle', 'refund') OR job_id IS NOT NULL OR user_id IS NULL OR user_id < 0);

-- Small: only deleted members' rows still under a token, which the sweep looks for.
CREATE INDEX ledger_forgotten ON ledger (period_at) WHERE user_id < 0;

ALTER TABLE jobs ADD COLUMN error_data JSONB;  -- a JSON object, or NULL
ALTER TABLE jobs ADD COLUMN role_ids TEXT;     -- comma-separated role ids the reservation used

CREATE TABLE store_secrets (
    name    TEXT PRIMARY KEY,
    value   BYTEA NOT NULL
);

INSERT INTO store_secrets (name, value)
VALUES ('member_token', sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')));

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
