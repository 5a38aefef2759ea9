-- The version of each kept snapshot (`data.version`, rising with every snapshot a system writes
-- of a case): a row is replaced only by a snapshot of a higher version, as a system restoring
-- from the topic keeps the highest. Offsets alone cannot order them: two snapshots published
-- one after the other can land on the partition in the other order. Rows written before this
-- column existed count as version 0 and are replaced by the next snapshot of their case.
ALTER TABLE state_snapshots ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
