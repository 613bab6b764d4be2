"""The engine: one anyio scheduling loop per run, executors, timeouts, retries.

It never touches the store: every transition goes to an ``EventSink``.
"""
