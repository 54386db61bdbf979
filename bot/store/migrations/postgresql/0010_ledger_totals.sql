-- SQLite's 0010_ledger_totals.sql in PostgreSQL's dialect (see it for what each part means):
-- running totals of the ledger per scope and window, back-filled for daily windows from 00:00 UTC,
-- and an index of members' unfinished jobs.

CREATE TABLE ledger_totals (
    scope         TEXT NOT NULL,
    window_start  TIMESTAMPTZ NOT NULL,
    used          BIGINT NOT NULL DEFAULT 0,
    granted       BIGINT NOT NULL DEFAULT 0,
    reserved      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, window_start)
);

-- A member's unfinished jobs, which every reservation counts, found without reading their history.
CREATE INDEX jobs_active_by_member ON jobs (guild_id, user_id)
    WHERE state NOT IN ('canceled', 'done', 'failed');

CREATE TABLE ledger_totals_window (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    window_key  TEXT NOT NULL
);

INSERT INTO ledger_totals_window (id, window_key) VALUES (1, 'daily 00:00:00');

INSERT INTO ledger_totals (scope, window_start, used, granted, reserved)
SELECT scope, window_start, SUM(used), SUM(granted), SUM(reserved)
FROM (
    SELECT s.scope, date_trunc('day', l.period_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS window_start,
           CASE WHEN l.kind <> 'grant' THEN -l.amount ELSE 0 END AS used,
           CASE WHEN s.member AND l.kind = 'grant' THEN l.amount ELSE 0 END AS granted,
           CASE WHEN NOT s.member THEN 0
                WHEN l.kind IN ('reserve', 'topup') THEN -l.amount
                WHEN l.kind IN ('settle', 'refund') THEN -(l.amount + COALESCE(l.charged, 0))
                ELSE 0 END AS reserved
    FROM ledger AS l
    CROSS JOIN LATERAL (
        SELECT 'bot' AS scope, false AS member
        UNION ALL SELECT 'guild:' || l.guild_id, false WHERE l.guild_id IS NOT NULL
        UNION ALL SELECT 'member:' || COALESCE(l.guild_id::text, '-') || ':' || l.user_id, true
        WHERE l.user_id IS NOT NULL
    ) AS s
) AS counted
GROUP BY scope, window_start
HAVING SUM(used) <> 0 OR SUM(granted) <> 0 OR SUM(reserved) <> 0;
