"""The feedback-triage worker: RAG answer feedback stored in PostgreSQL and routed to human review.

What is stored: every feedback event, one row of the `feedback` table per event id, with its
question, answer, retrieved contexts, rating, comment, user, model, prompt version and time, and
the topic, partition and offset it was read from. A replayed event changes nothing.

Which vote counts. Users may vote several times on the same answer; the view
`feedback_latest_votes` gives the one that counts for each voter:

- the same answer is the same `session_id`, `question` and `answer` text (the table's
  `answer_key` is a SHA-256 of the question and the answer, see the migration);
- a voter is a `user_id`; a vote without one is anonymous and counts alone;
- the voter's vote that counts is the latest: greatest `occurred_at`, ties broken by the greater
  `event_id`. Arrival order plays no part.

What goes to review is decided per event (`triage`): every thumbs-down and a deterministic sample
of thumbs-up. A thumbs-down later superseded by the same user's thumbs-up has still gone to review;
to know what users think now, read the view.
"""
