-- The messages of an open case's current step, as the intake system keeps them for an
-- operator's re-drive: taken back with the case after a restart, which no longer reads the
-- flow topics from their start. None once the case is completed.
ALTER TABLE cases ADD COLUMN trail JSONB;
