"""Model quality in the stream, pure: realised accuracy and its label-free estimate, drift
of the scored rows from the training data (distances, event-time windows)."""
