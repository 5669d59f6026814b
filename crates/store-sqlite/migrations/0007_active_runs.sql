-- Schema version 7: what `max_active_runs` counts at each claim (a workflow's unfinished runs,
-- and its triggers claimed whose run does not exist yet), by index; and the lease generation,
-- raised by every take of a run's lease: the fencing token each commit checks.
CREATE INDEX runs_unfinished ON runs (workflow) WHERE status IN ('pending', 'running', 'interrupted');
CREATE INDEX triggers_claimed ON triggers (workflow, claimed_at);
ALTER TABLE runs ADD COLUMN lease_generation INTEGER NOT NULL DEFAULT 0;
