-- Schema version 6: hosts' heartbeats (`bulkhead hosts`, `GET /api/hosts`).
CREATE TABLE hosts (
    owner         TEXT PRIMARY KEY,
    started_at    BIGINT NOT NULL,
    last_seen     BIGINT NOT NULL,
    slots         INTEGER NOT NULL,
    slots_in_use  INTEGER NOT NULL,
    runs          INTEGER NOT NULL
);
