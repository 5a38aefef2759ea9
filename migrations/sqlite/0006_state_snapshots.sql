-- The local store of the state topic: the latest snapshot each system wrote of each case, as
-- the topic's compaction would keep it, with the consumer offsets of the state group that
-- wrote it (in consumer_offsets, under the group `<prefix>.state[<systems>]`). A restart takes
-- back the open cases from here and reads the state topic only after the stored offsets; a
-- closed case's marker is read only when a message for the case comes again.
CREATE TABLE state_snapshots (
    topic         TEXT    NOT NULL,
    system_id     TEXT    NOT NULL,
    case_id       TEXT    NOT NULL,
    partition_id  INTEGER NOT NULL,
    record_offset INTEGER NOT NULL,
    -- When the system closed the case (its closed marker), microseconds since the Unix epoch;
    -- NULL while the case is open there.
    closed_at_us  INTEGER,
    -- The intake system's feed position, on its closed markers.
    sequence      INTEGER,
    -- The record's value as read from the topic: the snapshot's envelope.
    payload       BLOB    NOT NULL,
    PRIMARY KEY (topic, system_id, case_id)
);

CREATE INDEX state_snapshots_open ON state_snapshots (topic, system_id) WHERE closed_at_us IS NULL;
CREATE INDEX state_snapshots_closed ON state_snapshots (closed_at_us) WHERE closed_at_us IS NOT NULL;
CREATE INDEX state_snapshots_positions ON state_snapshots (topic, system_id, sequence) WHERE sequence IS NOT NULL;
