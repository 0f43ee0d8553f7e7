-- Backend callbacks (Replicate webhooks) name the job by the backend's own id.
CREATE INDEX jobs_runner ON jobs (backend, runner);
