-- Every RAG answer feedback event, one row per event id. A user's latest vote on an answer is the
-- row with the greatest occurred_at among those with the same (session_id, answer_key, user_id).
CREATE TABLE feedback (
    event_id uuid PRIMARY KEY,
    occurred_at timestamptz NOT NULL,
    session_id text NOT NULL,
    question text NOT NULL,
    answer text NOT NULL,
    answer_key text NOT NULL,
    contexts jsonb NOT NULL,
    rating text NOT NULL CHECK (rating IN ('up', 'down')),
    comment text,
    user_id text,
    model_name text NOT NULL,
    model_version text NOT NULL,
    prompt_version text,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX feedback_vote ON feedback (session_id, answer_key, user_id, occurred_at DESC);
