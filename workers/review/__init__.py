"""The review side: review tasks become items of a review tool, and reviewers' answers come back
as resolutions on Kafka, whatever the tool.

Follow an answer to Kafka in three files: the tool's notification (`argilla/webhooks.py`) names
an item; `collecting.py` reads it through the backend, resolves it, emits the resolution and marks
the item; `answers.py` is the pure rule from answers to resolution. `backend.py` is the interface
a tool's adapter implements (`argilla/` is one); `publisher.py` and `collector.py` are the two
processes.
"""
