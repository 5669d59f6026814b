-- Schema version 5: the validated, normalised workflow (versioned JSON) stored with each run, so
-- that resume, retry and reports read it back without validating the YAML again. NULL for runs
-- stored before this version: those are validated from their YAML as before.
ALTER TABLE runs ADD COLUMN workflow_spec TEXT;
