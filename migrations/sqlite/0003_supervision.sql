-- What the supervision system keeps: one row per supervised case, one per dispatch of a
-- collaboration event to a department, and the centres on each dispatch's route. Times are
-- microseconds since the Unix epoch (UTC), as in `cases`. A `*_on` column is the city's local
-- date of the time beside it: what a period of the figures selects on. `handling_hours` is
-- the working hours from receipt to finish (less a case's suspensions), computed with the
-- city's calendar when the row is written; null while the item is not finished.
CREATE TABLE supervision_cases (
    case_id            TEXT    NOT NULL PRIMARY KEY,
    trace_id           TEXT    NOT NULL,
    department         TEXT    NOT NULL,
    accepted_at_us     INTEGER NOT NULL,
    accepted_on        TEXT    NOT NULL,
    due_by_us          INTEGER NOT NULL,
    suspended_since_us INTEGER,
    paused_hours       REAL    NOT NULL,
    decided_at_us      INTEGER,
    handling_hours     REAL,
    rating             INTEGER,
    warned_yellow      BOOLEAN NOT NULL,
    warned_red         BOOLEAN NOT NULL
);

-- A department's figures select its cases by acceptance date; handling times come sorted.
CREATE INDEX supervision_cases_by_department
    ON supervision_cases (department, accepted_on, handling_hours);

CREATE TABLE supervision_assignments (
    event_id         TEXT    NOT NULL,
    dispatch         INTEGER NOT NULL,
    case_id          TEXT    NOT NULL,
    trace_id         TEXT    NOT NULL,
    department       TEXT    NOT NULL,
    dispatched_by    TEXT    NOT NULL,
    dispatched_at_us INTEGER NOT NULL,
    dispatched_on    TEXT    NOT NULL,
    deadline_us      INTEGER NOT NULL,
    extensions       INTEGER NOT NULL,
    answered_at_us   INTEGER,
    handling_hours   REAL,
    returned         BOOLEAN NOT NULL,
    warned_yellow    BOOLEAN NOT NULL,
    warned_red       BOOLEAN NOT NULL,
    escalated_to     TEXT,
    PRIMARY KEY (event_id, dispatch)
);

-- A department's figures select the dispatches to it by date; a centre's, the escalations it
-- received; the route's join reaches a dispatch by its key.
CREATE INDEX supervision_assignments_by_department
    ON supervision_assignments (department, dispatched_on, handling_hours);
CREATE INDEX supervision_assignments_by_escalation
    ON supervision_assignments (escalated_to, dispatched_on);

CREATE TABLE supervision_routes (
    event_id TEXT    NOT NULL,
    dispatch INTEGER NOT NULL,
    centre   TEXT    NOT NULL,
    hop      INTEGER NOT NULL,
    PRIMARY KEY (event_id, dispatch, centre),
    FOREIGN KEY (event_id, dispatch)
        REFERENCES supervision_assignments (event_id, dispatch) ON DELETE CASCADE
);

-- A centre's figures select the dispatches routed through it.
CREATE INDEX supervision_routes_by_centre ON supervision_routes (centre, event_id, dispatch);
