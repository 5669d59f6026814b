-- Bulkhead state store on PostgreSQL, schema version 1 (the same version numbers as the SQLite
-- backend, with native types: timestamptz, json, boolean, bytea). The store's API speaks milliseconds
-- since the Unix epoch; bulkhead_ts and bulkhead_ms convert exactly.

-- Beyond the range of timestamptz (year 294276), a time is +/-infinity, and back.
CREATE FUNCTION bulkhead_ts(ms bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT CASE WHEN ms >= 9000000000000000 THEN timestamptz 'infinity'
                      WHEN ms <= -9000000000000000 THEN timestamptz '-infinity'
                      ELSE timestamptz 'epoch' + ms * interval '1 millisecond' END $$;
CREATE FUNCTION bulkhead_ms(t timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT CASE WHEN t = timestamptz 'infinity' THEN 9223372036854775807
                      WHEN t = timestamptz '-infinity' THEN -9223372036854775808
                      ELSE floor(extract(epoch FROM t) * 1000)::bigint END $$;

CREATE TABLE runs (
    run_id            text PRIMARY KEY,
    workflow          text NOT NULL,
    workflow_hash     text NOT NULL,
    workflow_file     text NOT NULL,
    workflow_yaml     text NOT NULL,
    params            json NOT NULL, -- json keeps the text as given (jsonb refuses \u0000, reorders keys)
    status            text NOT NULL,
    created_at        timestamptz NOT NULL,
    finished_at       timestamptz,
    lease_owner       text,
    lease_expires_at  timestamptz,
    cancel_requested  boolean NOT NULL DEFAULT false
);
CREATE INDEX runs_by_created ON runs (created_at);
CREATE INDEX runs_by_workflow ON runs (workflow, created_at);
CREATE INDEX runs_by_status ON runs (status);

CREATE TABLE run_plugins (
    run_id     text NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    reference  text NOT NULL,
    hash       text NOT NULL,
    PRIMARY KEY (run_id, reference)
);
CREATE INDEX run_plugins_by_hash ON run_plugins (hash);

CREATE TABLE tasks (
    run_id         text NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    task           text NOT NULL,
    position       integer NOT NULL,
    status         text NOT NULL,
    attempts       integer NOT NULL DEFAULT 0,
    uncounted      integer NOT NULL DEFAULT 0,
    output         json, -- json, not jsonb: the plugin's text is kept exactly as it wrote it
    error_kind     text,
    error_message  bytea, -- may quote a plugin's bytes (see log)
    exit_code      integer,
    duration_us    bigint NOT NULL DEFAULT 0,
    fuel_used      bigint NOT NULL DEFAULT 0,
    peak_memory    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, task)
);

CREATE TABLE attempts (
    run_id         text NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    task           text NOT NULL,
    attempt        integer NOT NULL,
    status         text NOT NULL,
    lease_owner    text NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    error_kind     text,
    error_message  bytea, -- may quote a plugin's bytes (see log)
    exit_code      integer,
    duration_us    bigint,
    fuel_used      bigint,
    peak_memory    bigint,
    log            bytea, -- bytea, not text: a plugin's log may hold NUL bytes, which text refuses
    PRIMARY KEY (run_id, task, attempt)
);
