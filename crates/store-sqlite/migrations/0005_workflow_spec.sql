-- Schema version 5: a run's definition apart from its hot row. The workflow's text and its
-- validated, normalised form (versioned JSON, read back for resume, retry and reports without
-- validating the YAML again) live in run_definitions, written once. Kept in `runs`, every
-- lease renewal rewrote megabytes of overflow pages for a large workflow: a cost per commit that
-- grew with the run. workflow_spec is NULL for runs stored before this version.
CREATE TABLE run_definitions (
    run_id        TEXT PRIMARY KEY REFERENCES runs (run_id) ON DELETE CASCADE,
    workflow_yaml TEXT NOT NULL,
    workflow_spec TEXT
);
INSERT INTO run_definitions (run_id, workflow_yaml) SELECT run_id, workflow_yaml FROM runs;
ALTER TABLE runs DROP COLUMN workflow_yaml;
