"""Training, evaluation, the model registry, scoring and experiment statistics."""
