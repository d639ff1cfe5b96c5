"""The label-sink: resolved reviews and automatic decisions become training examples, on a topic
and in PostgreSQL."""
