"""Everything about an A/B or shadow experiment, pure: assignment, outcomes, arm health,
statistics, verdict, records.
"""
