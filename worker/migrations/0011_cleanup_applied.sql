-- The clean-up strength the model applied to a job's image: its options' own, or the one `cleanup=auto`
-- chose for that image (the runner reads its noise, gpu-runner/src/image/noise.ts). Null before the job
-- succeeded, for jobs made before this column, and where the backend does not say (Replicate).
ALTER TABLE jobs ADD COLUMN cleanup_applied REAL;
