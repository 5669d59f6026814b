-- Schema version 2: triggers (cron fires, delayed and API runs), claimed once.
CREATE TABLE triggers (
    trigger_key  text PRIMARY KEY,     -- 'cron:<workflow>:<scheduled ms>' or 'once:<run id>'
    kind         text NOT NULL,        -- 'cron' or 'once'
    workflow     text NOT NULL,
    params       json NOT NULL,
    due_at       timestamptz NOT NULL,
    created_at   timestamptz NOT NULL,
    run_id       text NOT NULL UNIQUE,
    claimed_at   timestamptz,
    error        text
);
CREATE INDEX triggers_due ON triggers (claimed_at, due_at);
CREATE INDEX triggers_by_workflow ON triggers (workflow, kind, due_at);
