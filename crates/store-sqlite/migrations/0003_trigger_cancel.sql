-- Schema version 3: a delayed run can be cancelled before it is due. `cancelled_at` is set (with
-- `claimed_at`, so that no host claims it) in the transaction that cancels it; such a trigger
-- never starts its run, and the run is listed as `cancelled`.
ALTER TABLE triggers ADD COLUMN cancelled_at BIGINT;
