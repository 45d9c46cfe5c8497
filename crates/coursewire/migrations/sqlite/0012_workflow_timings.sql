-- When each recording was first ready to post (complete, and captioned if its rule waits)
-- and first posted, and how many of its audits found drift: read by the step-latency and
-- drift metrics without parsing every progress document.
ALTER TABLE recording_workflows ADD COLUMN ready_at INTEGER;   -- unix ms
ALTER TABLE recording_workflows ADD COLUMN posted_at INTEGER;  -- unix ms
ALTER TABLE recording_workflows ADD COLUMN drift_found INTEGER NOT NULL DEFAULT 0;
CREATE INDEX recording_workflows_by_posted ON recording_workflows (posted_at);
