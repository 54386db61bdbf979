-- Re-runs without re-uploading, and the language of a job's messages.
--
-- 1. locale: the Discord locale of the member who started the job ("es-ES"), so its status and
--    result are written in their language, after a restart too.
-- 2. What a re-run needs, written when the job uploads its files: Magic Hour's file paths (kept
--    there 7 days from files_uploaded_at), and what probing found, so a re-run is priced without
--    the files: the video's and the audio's lengths, and the video's frame rate when the probe
--    found it constant (NULL: billed at the cap, as the first run was).
-- 3. rerun_of: the job whose uploads this one reused (no foreign key: deleting a member's data
--    deletes their re-runs with the jobs they came from).

ALTER TABLE jobs ADD COLUMN locale TEXT;
ALTER TABLE jobs ADD COLUMN video_file_path TEXT;      -- NULL for a YouTube source, or before upload
ALTER TABLE jobs ADD COLUMN audio_file_path TEXT;
ALTER TABLE jobs ADD COLUMN files_uploaded_at TEXT;    -- UTC, fixed-width ISO 8601, like created_at
ALTER TABLE jobs ADD COLUMN video_seconds REAL CHECK (video_seconds IS NULL OR video_seconds >= 0);
ALTER TABLE jobs ADD COLUMN audio_seconds REAL CHECK (audio_seconds IS NULL OR audio_seconds >= 0);
ALTER TABLE jobs ADD COLUMN source_fps REAL CHECK (source_fps IS NULL OR source_fps > 0);
ALTER TABLE jobs ADD COLUMN rerun_of INTEGER;
