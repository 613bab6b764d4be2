"""The long-running worker (DESIGN §9, issue 11): schedules, the queue, wake-ups, recovery."""
