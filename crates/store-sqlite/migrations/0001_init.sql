-- Bulkhead state store, schema version 1. Portable SQL (SQLite and PostgreSQL).
-- Times are milliseconds since the Unix epoch (BIGINT); JSON values are TEXT.

CREATE TABLE runs (
    run_id            TEXT PRIMARY KEY,
    workflow          TEXT NOT NULL,
    workflow_hash     TEXT NOT NULL,
    workflow_file     TEXT NOT NULL,
    workflow_yaml     TEXT NOT NULL,
    params            TEXT NOT NULL,
    status            TEXT NOT NULL,
    created_at        BIGINT NOT NULL,
    finished_at       BIGINT,
    lease_owner       TEXT,
    lease_expires_at  BIGINT,
    cancel_requested  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_created ON runs (created_at);
CREATE INDEX runs_by_workflow ON runs (workflow, created_at);
CREATE INDEX runs_by_status ON runs (status);

-- The exact plugin versions a run uses: resume loads these, by content hash.
CREATE TABLE run_plugins (
    run_id     TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    reference  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    PRIMARY KEY (run_id, reference)
);
CREATE INDEX run_plugins_by_hash ON run_plugins (hash);

CREATE TABLE tasks (
    run_id         TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    task           TEXT NOT NULL,
    position       INTEGER NOT NULL,
    status         TEXT NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,
    uncounted      INTEGER NOT NULL DEFAULT 0, -- attempts not counted against max_attempts
    output         TEXT,
    error_kind     TEXT,
    error_message  TEXT,
    exit_code      INTEGER,
    duration_us    BIGINT NOT NULL DEFAULT 0,
    fuel_used      BIGINT NOT NULL DEFAULT 0,
    peak_memory    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, task)
);

CREATE TABLE attempts (
    run_id         TEXT NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    task           TEXT NOT NULL,
    attempt        INTEGER NOT NULL,
    status         TEXT NOT NULL,
    lease_owner    TEXT NOT NULL,
    started_at     BIGINT NOT NULL,
    finished_at    BIGINT,
    error_kind     TEXT,
    error_message  TEXT,
    exit_code      INTEGER,
    duration_us    BIGINT,
    fuel_used      BIGINT,
    peak_memory    BIGINT,
    log            TEXT,
    PRIMARY KEY (run_id, task, attempt)
);
