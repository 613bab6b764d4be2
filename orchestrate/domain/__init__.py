"""The domain layer: statuses, events, errors and the run-state reducer (stdlib only)."""
