"""The control plane as it runs in a worker: its reading of the log, the loaded models, audit,
the monitor.
"""
