-- Schema version 6: hosts' heartbeats (`bulkhead hosts`, `GET /api/hosts`), on the database's
-- clock.
CREATE TABLE hosts (
    owner         text PRIMARY KEY,
    started_at    timestamptz NOT NULL,
    last_seen     timestamptz NOT NULL,
    slots         integer NOT NULL,
    slots_in_use  integer NOT NULL,
    runs          integer NOT NULL
);

-- Plugin copies, content-addressed, so that any host can resume any run: one row per hash, its
-- bytes in chunks of at most 1 MiB (written and read a chunk at a time, never one huge value).
CREATE TABLE plugin_copies (
    hash    text PRIMARY KEY,
    size    bigint NOT NULL,
    chunks  integer NOT NULL
);
CREATE TABLE plugin_chunks (
    hash   text NOT NULL REFERENCES plugin_copies (hash) ON DELETE CASCADE,
    chunk  integer NOT NULL,
    bytes  bytea NOT NULL,
    PRIMARY KEY (hash, chunk)
);
