"""``python -m streams.cli``: the `profitstream` console script, without its wrapper."""

from streams.cli.app import main

main()
