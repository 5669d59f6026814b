-- Schema version 9: the due claim and the pending count read the partial index of open triggers
-- (schema 8), so the two indexes that covered every trigger ever fired are dropped. A trigger is
-- claimed before its run is created, so an unclaimed trigger is always open: the partial index
-- holds every row those queries can find. Each trigger written (fired, claimed, fulfilled) now
-- updates seven b-trees instead of nine.
DROP INDEX triggers_due;
DROP INDEX triggers_claimed;
