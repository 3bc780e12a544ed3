"""Shell: the command-line entry points behind ``python -m edge`` (run, check-config,
provision, audit, queue, policy, subject): argument parsing and printing, nothing the
agent needs at run time."""
