-- SQLite's 0010_placeholder.sql in PostgreSQL's dialect: it changes nothing.
SELECT 1;
