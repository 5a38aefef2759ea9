-- A case's revision rises with every change to its view (its number of history entries): a
-- write never replaces a row with an older revision, so two writers of one case — an intake
-- process catching up while another runs ahead, or a case written again after a restart — end
-- with the newest. The open cases are what an intake process takes back into memory at start;
-- the trace id is what the messages of a case taken back carry.
ALTER TABLE cases ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE cases ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
CREATE INDEX cases_open ON cases (case_id) WHERE status NOT IN ('completed', 'failed');
