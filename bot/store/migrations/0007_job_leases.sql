-- Job leases: which process runs each unfinished job, and until when its claim holds unless renewed.
-- Several processes can share a database (PostgreSQL; or SQLite, with the `render` command beside
-- the bot); a process that dies stops renewing, and another takes its jobs over. See bot/store/jobs.py.

ALTER TABLE jobs ADD COLUMN claimed_by TEXT;   -- the owning process's name; NULL: nobody's
ALTER TABLE jobs ADD COLUMN lease_until TEXT;  -- UTC, fixed-width ISO 8601; NULL with claimed_by
