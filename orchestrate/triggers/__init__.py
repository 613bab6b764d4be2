"""Triggers: events that start pipelines (DESIGN §9). Schedules come with the worker."""
