-- RAG answer feedback: every event, one row per event id (the feedback-triage worker inserts and
-- never updates: an event id always names the same event, so a replay changes nothing).
--
-- Votes. The same answer is the same session_id, question and answer text; answer_key stands for
-- the question and answer: the SHA-256 of the question's UTF-8 bytes, one NUL byte, then the
-- answer's (PostgreSQL text cannot hold NUL, so the separator is unambiguous). A voter is a
-- user_id; a vote without one is anonymous and counts alone. The vote that counts is the voter's
-- latest: greatest occurred_at, ties broken by the greater event_id. feedback_latest_votes gives
-- exactly those rows.

-- convert_to is only STABLE because it looks the conversion up by name; converting to UTF8 from
-- the database's fixed encoding always gives the same bytes, so the key may be a stored column.
CREATE FUNCTION feedback_answer_key(question text, answer text) RETURNS bytea
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT sha256(convert_to(question, 'UTF8') || '\x00'::bytea || convert_to(answer, 'UTF8')) $$;

CREATE TABLE feedback (
    event_id uuid PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    session_id text NOT NULL,
    question text NOT NULL,
    answer text NOT NULL,
    answer_key bytea NOT NULL GENERATED ALWAYS AS (feedback_answer_key(question, answer)) STORED,
    contexts jsonb NOT NULL,
    rating text NOT NULL,
    comment text,
    user_id text,
    model_name text NOT NULL,
    model_version text NOT NULL,
    prompt_version text,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT feedback_rating CHECK (rating IN ('up', 'down')),
    CONSTRAINT feedback_contexts_array CHECK (jsonb_typeof(contexts) = 'array'),
    -- Both are in the votes index, whose entries must stay under ~2.7 kB: a longer id is refused
    -- (the event is dead-lettered) rather than failing the index on every retry.
    CONSTRAINT feedback_session_id_length CHECK (octet_length(session_id) <= 1024),
    CONSTRAINT feedback_user_id_length CHECK (octet_length(user_id) <= 1024)
);

CREATE INDEX feedback_votes ON feedback (session_id, answer_key, user_id, occurred_at DESC, event_id DESC);

-- One row per (session_id, answer_key, voter): the vote that counts. DISTINCT ON treats NULLs as
-- equal, so anonymous rows are told apart by their event_id.
CREATE VIEW feedback_latest_votes AS
SELECT DISTINCT ON (session_id, answer_key, user_id, CASE WHEN user_id IS NULL THEN event_id END)
    session_id,
    answer_key,
    user_id,
    event_id,
    occurred_at,
    rating,
    comment,
    question,
    answer,
    model_name,
    model_version,
    prompt_version
FROM feedback
ORDER BY
    session_id,
    answer_key,
    user_id,
    CASE WHEN user_id IS NULL THEN event_id END,
    occurred_at DESC,
    event_id DESC;
