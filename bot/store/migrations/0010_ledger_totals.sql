-- Running totals of the ledger, so a reservation reads a few rows instead of summing its window.
-- See bot/store/totals.py.
--
-- 1. `ledger_totals`: per scope ('bot', 'guild:<server>', 'member:<server or ->:<user>') and
--    window start, what the window's rows add up to: `used` (grants aside, signs as in the
--    ledger), and for members `granted` and `reserved` (what open reservations hold). Written in the same
--    transaction as every ledger row. A window with no row yet reads as zero.
-- 2. `ledger_totals_window`: the one window rule the totals are kept for. Back-filled here for the
--    default rule (daily, reset at 00:00 UTC); a bot configured otherwise recounts them from the
--    ledger the first time it reserves (QuotaLedger.ensure_totals).

CREATE TABLE ledger_totals (
    scope         TEXT NOT NULL,
    window_start  TEXT NOT NULL,          -- the window's start, stored like ledger.period_at
    used          INTEGER NOT NULL DEFAULT 0,
    granted       INTEGER NOT NULL DEFAULT 0,
    reserved      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, window_start)
);

-- 3. `jobs_active_by_member`: a member's unfinished jobs, which every reservation counts, found
--    without reading their history (states listed as bot/store/ledger.py lists them: SQLite
--    uses a partial index only for the same terms).
CREATE INDEX jobs_active_by_member ON jobs (guild_id, user_id)
    WHERE state NOT IN ('canceled', 'done', 'failed');

CREATE TABLE ledger_totals_window (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    window_key  TEXT NOT NULL             -- e.g. 'daily 00:00:00', 'weekly 06:30:00'
);

INSERT INTO ledger_totals_window (id, window_key) VALUES (1, 'daily 00:00:00');

-- Daily windows from 00:00 UTC: the day of period_at (fixed-width ISO 8601 text, always UTC).
INSERT INTO ledger_totals (scope, window_start, used, granted, reserved)
SELECT scope, window_start, SUM(used), SUM(granted), SUM(reserved)
FROM (
    SELECT s.scope, substr(l.period_at, 1, 10) || 'T00:00:00.000000+00:00' AS window_start,
           CASE WHEN l.kind <> 'grant' THEN -l.amount ELSE 0 END AS used,
           CASE WHEN s.member AND l.kind = 'grant' THEN l.amount ELSE 0 END AS granted,
           CASE WHEN NOT s.member THEN 0
                WHEN l.kind IN ('reserve', 'topup') THEN -l.amount
                WHEN l.kind IN ('settle', 'refund') THEN -(l.amount + COALESCE(l.charged, 0))
                ELSE 0 END AS reserved
    FROM ledger AS l
    JOIN (
        SELECT id, 'bot' AS scope, 0 AS member FROM ledger
        UNION ALL
        SELECT id, 'guild:' || guild_id, 0 FROM ledger WHERE guild_id IS NOT NULL
        UNION ALL
        SELECT id, 'member:' || COALESCE(CAST(guild_id AS TEXT), '-') || ':' || user_id, 1 FROM ledger
        WHERE user_id IS NOT NULL
    ) AS s ON s.id = l.id
) AS counted
GROUP BY scope, window_start
HAVING SUM(used) <> 0 OR SUM(granted) <> 0 OR SUM(reserved) <> 0;
