-- Schema version 7: what `max_active_runs` counts at each claim (a workflow's unfinished runs,
-- and its triggers claimed whose run does not exist yet), by index. (The lease generation that
-- the SQLite backend adds here has been in this backend's schema since version 5.)
CREATE INDEX runs_unfinished ON runs (workflow) WHERE status IN ('pending', 'running', 'interrupted');
CREATE INDEX triggers_claimed ON triggers (workflow, claimed_at);
