"""Faust app, topics, agents, CLI and HTTP views of profitstream."""
