-- The queue index holds only queued jobs, not the history that piles up behind
-- them: claims and queue depth read a small index, and no plan for finished or
-- running jobs (retention, recovery) picks it over their own partial indexes.
DROP INDEX submissions_queue;
CREATE INDEX submissions_queue ON submissions (created_ms, id) WHERE state = 'queued';
