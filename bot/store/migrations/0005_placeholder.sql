-- A stand-in for migration 0005, which another branch adds; it changes nothing. Remove it when
-- that branch is merged (see 0006_rerun_files_locale.sql).
SELECT 1;
