"""Model quality in the stream: realised accuracy, its label-free estimate (pure)."""
