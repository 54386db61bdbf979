"""The quota store's SQL, named and kept in one place (`?` placeholders; see `bot.store.db`).

`quota`, `limits_reader` and `usage` run these by name, so a reader finds every statement that
touches the ledger here, next to the others it must agree with.
"""

from __future__ import annotations

from typing import Final

LEDGER_COLUMNS: Final = "kind, job_id, guild_id, user_id, mode, amount, charged, period_at, at, by_user_id, note"

# One ledger row, returned whole; every column given (NULL where it does not apply).
INSERT_LEDGER_ROW: Final = f"INSERT INTO ledger ({LEDGER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *"  # noqa: S608

# A server's settings (NULLs when it has none) with a member's own limit and their roles' highest;
# `{roles}` is one `?` per role id (or NULL for none).
MEMBER_LIMITS: Final = (
    "SELECT g.default_member_credits, g.pool_credits, g.allowed_modes, g.max_clip_seconds, g.max_active_jobs,"
    " (SELECT m.credits FROM member_limits AS m WHERE m.guild_id = ? AND m.user_id = ?) AS member_credits,"
    " (SELECT MAX(r.credits) FROM role_limits AS r WHERE r.guild_id = ? AND r.role_id IN ({roles})) AS role_credits"
    " FROM (SELECT 1 AS one) AS x LEFT JOIN guild_settings AS g ON g.guild_id = ?"
)

JOB_GUILD: Final = "SELECT guild_id FROM jobs WHERE id = ?"
JOB_ROLE_IDS: Final = "SELECT role_ids FROM jobs WHERE id = ?"
RECORD_RESERVATION: Final = "UPDATE jobs SET estimated_credits = ?, role_ids = ?, updated_at = ? WHERE id = ?"
RECORD_TOP_UP: Final = "UPDATE jobs SET estimated_credits = ?, updated_at = ? WHERE id = ?"

JOB_ENTRIES: Final = "SELECT * FROM ledger WHERE job_id = ? ORDER BY id"
MEMBER_ENTRIES: Final = "SELECT * FROM ledger WHERE guild_id IS NOT DISTINCT FROM ? AND user_id = ?{since} ORDER BY id"
MEMBER_ENTRIES_SINCE: Final = " AND period_at >= ?"

# A server's usage rows over a period, each marked open when its job holds credits still.
USAGE_ROWS: Final = (
    "SELECT r.user_id, r.mode, r.kind, r.amount, r.charged,"
    " (r.kind IN ('reserve', 'topup') AND r.job_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ledger AS c"
    "   WHERE c.job_id = r.job_id AND c.kind IN ('settle', 'refund'))) AS open"
    " FROM ledger AS r"
    " WHERE r.guild_id IS NOT DISTINCT FROM ? AND r.period_at >= ? AND r.period_at < ?"
    " AND r.kind <> 'grant'"
)
