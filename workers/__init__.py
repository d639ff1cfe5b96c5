"""hitl-workers: Kafka workers that route a model's hard cases to human review and back into training data."""

__version__ = "0.1.0"
