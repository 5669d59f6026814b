-- Schema version 4: tasks by their place in the workflow file.
CREATE INDEX tasks_by_position ON tasks (run_id, position);
