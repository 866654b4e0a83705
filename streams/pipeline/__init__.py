"""One input batch, from fetch to acknowledgement: reading, applying, scoring, emitting,
persisting.
"""
