"""Model monitoring in the stream, pure: the training reference, drift distances, windows."""
