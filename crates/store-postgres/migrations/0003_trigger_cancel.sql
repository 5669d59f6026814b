-- Schema version 3: a delayed run can be cancelled before it is due.
ALTER TABLE triggers ADD COLUMN cancelled_at timestamptz;
