"""orchestrate: a local-first pipeline orchestrator for agent and CI/CD work."""

__version__ = "0.1.0"
