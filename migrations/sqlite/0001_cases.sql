-- The case repository: one row per case, and the consumer offsets of the groups that write it.
-- Times are microseconds since the Unix epoch (UTC), so that both engines order and compare
-- them exactly alike and a page cursor holds the very value a row holds.
CREATE TABLE cases (
    case_id         TEXT    NOT NULL PRIMARY KEY,
    owner           TEXT,
    terminal_id     TEXT    NOT NULL,
    matter_code     TEXT    NOT NULL,
    department      TEXT,
    status          TEXT    NOT NULL,
    submitted_at_us INTEGER NOT NULL,
    updated_at_us   INTEGER NOT NULL,
    view            TEXT    NOT NULL
);

-- Every list is ordered newest first by (submitted_at, case_id); each filter narrows it.
CREATE INDEX cases_by_submitted ON cases (submitted_at_us DESC, case_id DESC);
CREATE INDEX cases_by_department ON cases (department, status, submitted_at_us DESC, case_id DESC);
CREATE INDEX cases_by_owner ON cases (owner, submitted_at_us DESC, case_id DESC);
CREATE INDEX cases_by_matter ON cases (matter_code, submitted_at_us DESC, case_id DESC);

CREATE TABLE consumer_offsets (
    group_id     TEXT    NOT NULL,
    topic        TEXT    NOT NULL,
    partition_id INTEGER NOT NULL,
    next_offset  INTEGER NOT NULL,
    PRIMARY KEY (group_id, topic, partition_id)
);
