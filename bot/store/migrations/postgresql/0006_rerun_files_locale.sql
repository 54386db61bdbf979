-- Re-runs without re-uploading, and the language of a job's messages: SQLite's
-- 0006_rerun_files_locale.sql in PostgreSQL's dialect (see it for what each column means).

ALTER TABLE jobs ADD COLUMN locale TEXT;
ALTER TABLE jobs ADD COLUMN video_file_path TEXT;        -- NULL for a YouTube source, or before upload
ALTER TABLE jobs ADD COLUMN audio_file_path TEXT;
ALTER TABLE jobs ADD COLUMN files_uploaded_at TIMESTAMPTZ;
ALTER TABLE jobs ADD COLUMN video_seconds DOUBLE PRECISION CHECK (video_seconds IS NULL OR video_seconds >= 0);
ALTER TABLE jobs ADD COLUMN audio_seconds DOUBLE PRECISION CHECK (audio_seconds IS NULL OR audio_seconds >= 0);
ALTER TABLE jobs ADD COLUMN source_fps DOUBLE PRECISION CHECK (source_fps IS NULL OR source_fps > 0);
ALTER TABLE jobs ADD COLUMN rerun_of BIGINT;
