"""The demo: the whole pipeline on the bundled sample, with simulated reviewers answering in Argilla."""
