-- A cycle that trips an IMMEDIATE STOP trigger (procedure 4.2) ends with outcome 'stopped'; the first
-- schema did not allow it, so recording such a cycle failed and the stop was misreported as an error.
ALTER TABLE cycle_runs DROP CONSTRAINT cycle_runs_outcome_check;
ALTER TABLE cycle_runs ADD CONSTRAINT cycle_runs_outcome_check
    CHECK (outcome IN ('ok', 'closed', 'halted', 'refused', 'error', 'skipped', 'stopped'));
