-- SQLite's 0005_placeholder.sql in PostgreSQL's dialect: it changes nothing. It stays, like its
-- SQLite twin, so that both dialects keep the same numbers (databases may have recorded it).
SELECT 1;
