-- What the supervision system needs to take its open records back at start and to read a
-- case back when a message for it comes after it left memory: the ids of the messages applied
-- to each case's records (so that a repeat is recognised), the dispatches of a case, and the
-- open cases and dispatches, each by an index of its own.
CREATE TABLE supervision_messages (
    case_id    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (case_id, message_id)
);

CREATE INDEX supervision_assignments_by_case ON supervision_assignments (case_id);

-- The same conditions as the open records' queries, so that both engines use these.
CREATE INDEX supervision_cases_open ON supervision_cases (case_id)
    WHERE decided_at_us IS NULL;
CREATE INDEX supervision_assignments_open ON supervision_assignments (case_id)
    WHERE answered_at_us IS NULL AND NOT returned;
