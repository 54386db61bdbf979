-- Job leases: SQLite's 0007_job_leases.sql in PostgreSQL's dialect. Claims are taken with
-- SELECT … FOR UPDATE SKIP LOCKED over unfinished jobs (the partial index jobs_unfinished).

ALTER TABLE jobs ADD COLUMN claimed_by TEXT;         -- the owning process's name; NULL: nobody's
ALTER TABLE jobs ADD COLUMN lease_until TIMESTAMPTZ; -- NULL with claimed_by
