-- Log search matches each term of `q` as a case-insensitive substring of
-- the body. The token bloom filter of 0002 could not serve that (a term may
-- be part of a word, and the search never asked it), so it is replaced by
-- an n-gram bloom filter over the lowercased body: the search's
-- `lowerUTF8(body) LIKE '%term%'` lets ClickHouse skip every granule whose
-- filter lacks one of the term's trigrams (terms of three or more
-- characters). Existing parts get the index by a background mutation.
ALTER TABLE logs ADD INDEX IF NOT EXISTS idx_body_ngrams lowerUTF8(body) TYPE ngrambf_v1(3, 65536, 2, 0) GRANULARITY 1;

ALTER TABLE logs MATERIALIZE INDEX idx_body_ngrams;

ALTER TABLE logs DROP INDEX IF EXISTS idx_body;
