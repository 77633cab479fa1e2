-- A prompt version's `{{variable}}` names, computed once when the version
-- is written (views::prompts::variables), never per read. Versions written
-- before this column exist have NULL and are scanned (in linear time) on read.
ALTER TABLE prompt_versions ADD COLUMN IF NOT EXISTS variables text[];
