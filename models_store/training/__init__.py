"""Training: the dataset at cutoffs, purged time splits, budgeted search, evaluation, reports."""
