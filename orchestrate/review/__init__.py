"""Goals, review findings and auto-scheduling (DESIGN §8): services over the store.

goals.py      goal add/link/remove and progress computed from runs and task metrics
findings.py   the review's rules, each a function of recent history
service.py    review, apply (schedule a pipeline per finding, with a cool-down), auto_schedule
config.py     the review: section of orchestrate.yaml
"""
