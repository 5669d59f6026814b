-- Schema version 5: a run's definition apart from its hot row (written once). Also, on this
-- backend: the lease generation, raised by every take of a run's lease (the fencing token).
CREATE TABLE run_definitions (
    run_id        text PRIMARY KEY REFERENCES runs (run_id) ON DELETE CASCADE,
    workflow_yaml text NOT NULL,
    workflow_spec text
);
INSERT INTO run_definitions (run_id, workflow_yaml) SELECT run_id, workflow_yaml FROM runs;
ALTER TABLE runs DROP COLUMN workflow_yaml;
ALTER TABLE runs ADD COLUMN lease_generation bigint NOT NULL DEFAULT 0;
