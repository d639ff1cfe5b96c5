"""The one runtime every worker runs on: it owns the Kafka loop, offsets, dead letters and metrics."""
