-- Schema version 2: triggers (cron fires, delayed and API runs). A trigger gets its run id when it
-- is created and starts that run once: `claimed_at` is set in the same transaction that finds it
-- due, and the run is created with the id the trigger carries.
CREATE TABLE triggers (
    trigger_key  TEXT PRIMARY KEY,     -- 'cron:<workflow>:<scheduled ms>' or 'once:<run id>'
    kind         TEXT NOT NULL,        -- 'cron' or 'once'
    workflow     TEXT NOT NULL,
    params       TEXT NOT NULL,
    due_at       BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    run_id       TEXT NOT NULL UNIQUE,
    claimed_at   BIGINT,
    error        TEXT
);
CREATE INDEX triggers_due ON triggers (claimed_at, due_at);
CREATE INDEX triggers_by_workflow ON triggers (workflow, kind, due_at);
