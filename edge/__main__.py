"""Shell: ``python -m edge`` must start here; the command line is ``edge.cli.main``."""

from edge.cli.main import run

run()
