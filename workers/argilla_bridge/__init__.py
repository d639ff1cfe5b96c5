"""The Argilla bridge: review tasks become Argilla records, and reviewers' answers come back as events.

`publisher` (a worker) logs tasks as records; `collector` (a service) receives Argilla's webhooks,
turns completed records into resolutions (`resolution`), and reconciles what it missed
(`reconciliation`). Every Argilla call is in `adapter`; `datasets` and `records` say what a task
looks like in Argilla.
"""
