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
