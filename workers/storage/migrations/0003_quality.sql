-- What the loop-quality figures are computed from (`hitl-workers report`, `calibrate`, the
-- quality-exporter), written by the quality recorders: quality-decisions (hitl.decisions),
-- quality-tasks (hitl.review.tasks) and quality-reviews (hitl.review.resolved).
--
-- Every row is keyed by the event's id and upserted, so replaying a topic changes nothing. The
-- prediction's scores and ground truth (when the producer knows it) are kept with each routed
-- prediction: calibration replays them through a proposed band policy.

-- Every automatic decision of the band-router.
CREATE TABLE quality_decisions (
    event_id uuid PRIMARY KEY,
    task text NOT NULL,
    model_name text NOT NULL,
    model_version text NOT NULL,
    label text NOT NULL,
    outcome text NOT NULL,
    score double precision NOT NULL,
    band_low double precision NOT NULL,
    band_high double precision NOT NULL,
    band_source text NOT NULL,
    policy_version text NOT NULL,
    scores jsonb NOT NULL,
    ground_truth text,
    occurred_at timestamptz NOT NULL,
    decided_at timestamptz NOT NULL,
    CONSTRAINT quality_decisions_outcome CHECK (outcome IN ('auto_accepted', 'auto_rejected'))
);

CREATE INDEX quality_decisions_task_decided_at ON quality_decisions (task, decided_at);

-- Every review task, whatever its kind and reason (grey_band, audit_sample, negative_feedback, ...).
-- task, scores and ground_truth are a prediction's (moderation tasks); the model is the source's.
CREATE TABLE quality_review_tasks (
    task_id uuid PRIMARY KEY,
    kind text NOT NULL,
    reason text NOT NULL,
    priority integer NOT NULL,
    task text,
    model_name text NOT NULL,
    model_version text NOT NULL,
    suggested_label text,
    suggested_score double precision,
    scores jsonb,
    ground_truth text,
    occurred_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE INDEX quality_review_tasks_created_at ON quality_review_tasks (created_at);

-- The latest revision of each resolution. answer is the outcome in the form reviewers' answers
-- are compared (label, verdict, canonical corrected JSON); null when discarded.
-- first_resolved_at is the first revision's time: when the task stopped waiting.
CREATE TABLE quality_reviews (
    task_id uuid PRIMARY KEY,
    kind text NOT NULL,
    status text NOT NULL,
    answer text,
    agreement double precision NOT NULL,
    reviewers text[] NOT NULL,
    revision integer NOT NULL,
    first_resolved_at timestamptz NOT NULL,
    resolved_at timestamptz NOT NULL,
    CONSTRAINT quality_reviews_status CHECK (status IN ('submitted', 'discarded'))
);

-- Each reviewer's answer to a resolution, per revision (the reviews' revision is the current one).
CREATE TABLE quality_review_answers (
    task_id uuid NOT NULL,
    revision integer NOT NULL,
    position integer NOT NULL,
    reviewer text NOT NULL,
    answer text,
    PRIMARY KEY (task_id, revision, position)
);
