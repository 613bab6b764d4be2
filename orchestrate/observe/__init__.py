"""Agent self-reporting: Pipeline → Step → Job, job logs, staleness (DESIGN §7)."""
