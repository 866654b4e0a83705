"""Scoring: a model's score of a feature row, the prediction payload, when it is emitted."""
