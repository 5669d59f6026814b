-- Schema version 4: tasks by their place in the workflow file, so that a run's tasks can be read
-- a page at a time in file order (the --json report of a recorded run is written that way).
CREATE INDEX tasks_by_position ON tasks (run_id, position);
