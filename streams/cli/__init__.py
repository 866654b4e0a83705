"""The `profitstream` command line, a module per command group.

``main`` is re-exported here so the console script ``streams.cli:main`` keeps its path.
"""

from streams.cli.app import main

__all__ = ["main"]
