-- Training data written by the label-sink: one row per training example, the extraction
-- correction triples, the reviewers' verdicts on RAG answers, and discarded reviews.
--
-- Every table is keyed by an id derived from the event (example_id, or the reviewed event's id),
-- and the sink upserts: a replay of the same messages changes no row, and a later label for the
-- same example (a re-review) replaces an earlier one but never the other way round (the guard on
-- labelled_at / resolved_at). stored_at is when the row was first written; updated_at when its
-- content last changed.

CREATE TABLE training_examples (
    example_id uuid PRIMARY KEY,
    kind text NOT NULL,
    label_source text NOT NULL,
    -- The prediction, feedback or extraction the label is about (the review task id for human labels).
    source_event_id uuid NOT NULL,
    -- Moderation only: the reviewers' label, or the auto-accepted label; null for an auto-rejection.
    label text,
    input jsonb NOT NULL,
    model_output jsonb,
    human_output jsonb,
    reviewers text[] NOT NULL,
    agreement double precision,
    model_name text NOT NULL,
    model_version text NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    task_id uuid,
    occurred_at timestamptz NOT NULL,
    labelled_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT training_examples_kind CHECK (kind IN ('moderation', 'rag_answer', 'extraction')),
    CONSTRAINT training_examples_label_source CHECK (label_source IN ('human', 'auto')),
    CONSTRAINT training_examples_agreement CHECK (agreement BETWEEN 0 AND 1)
);

-- The export reads one kind from a time on.
CREATE INDEX training_examples_kind_labelled_at ON training_examples (kind, labelled_at);

-- Structured extraction: the triple kept for fine-tuning. corrected_output is the reviewers' JSON
-- text exactly as submitted (jsonb would reorder its keys); training_examples.human_output holds
-- the same document as jsonb.
CREATE TABLE extraction_corrections (
    extraction_event_id uuid PRIMARY KEY,
    example_id uuid NOT NULL REFERENCES training_examples (example_id),
    document_id text NOT NULL,
    source_text text NOT NULL,
    schema_name text NOT NULL,
    schema_version text NOT NULL,
    llm_output text NOT NULL,
    corrected_output text NOT NULL,
    reviewers text[] NOT NULL,
    agreement double precision,
    model_name text NOT NULL,
    model_version text NOT NULL,
    occurred_at timestamptz NOT NULL,
    resolved_at timestamptz NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX extraction_corrections_resolved_at ON extraction_corrections (resolved_at);

-- The reviewers' verdict on a RAG answer, keyed by the feedback event's id (the review task id).
-- No foreign key to feedback: the feedback row is written by another worker, possibly later, or in
-- another schema or database; rag_feedback_reviews joins the two where both are here.
CREATE TABLE rag_reviews (
    feedback_event_id uuid PRIMARY KEY,
    example_id uuid NOT NULL REFERENCES training_examples (example_id),
    verdict text NOT NULL,
    fault text,
    corrected_answer text,
    note text,
    reviewers text[] NOT NULL,
    agreement double precision,
    resolved_at timestamptz NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rag_reviews_verdict CHECK (verdict IN ('correct', 'incorrect', 'partially_correct')),
    CONSTRAINT rag_reviews_fault CHECK (fault IN ('retrieval', 'generation', 'both', 'other', 'none'))
);

-- Reviews the reviewers discarded: no training example, but a record that the task was closed.
CREATE TABLE discarded_reviews (
    task_id uuid PRIMARY KEY,
    kind text NOT NULL,
    reviewers text[] NOT NULL,
    agreement double precision,
    resolved_at timestamptz NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Each RAG review with the user's feedback, when the feedback row is stored in this schema
-- (feedback_stored is false until it is).
CREATE VIEW rag_feedback_reviews AS
SELECT
    r.feedback_event_id,
    r.example_id,
    r.verdict,
    r.fault,
    r.corrected_answer,
    r.note,
    r.reviewers,
    r.agreement,
    r.resolved_at,
    f.event_id IS NOT NULL AS feedback_stored,
    f.occurred_at AS feedback_occurred_at,
    f.session_id,
    f.user_id,
    f.rating,
    f.comment,
    f.question,
    f.answer,
    f.model_name,
    f.model_version,
    f.prompt_version
FROM rag_reviews r
LEFT JOIN feedback f ON f.event_id = r.feedback_event_id;
