"""The band-router: predictions to automatic decisions or human review, by a reloadable policy."""
