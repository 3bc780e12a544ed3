"""Shell: the ``python -m edge`` command line (``edge/__main__.py`` hands over to ``main``).

python -m edge run --config FILE           run the daemon
python -m edge check-config FILE           print every config problem, exit 2 if any
python -m edge policy ...                  list/show/diff/export policy versions
python -m edge audit verify|export ...     check or export the audit trail
python -m edge queue PATH                  what waits in the outbox, what it dropped
python -m edge subject export|erase ...    the data subject's rights on the device
python -m edge provision DIR [--serial SN]  everything one device and a local broker need
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

USAGE = """usage: python -m edge COMMAND ...

commands:
  run --config FILE        run the agent (daemon)
  check-config FILE        validate a config file; exit 2 and list every problem if bad
  policy ...               policy versions: list, show, diff, export (python -m edge policy -h)
  audit ...                audit trail: verify, export (python -m edge audit -h)
  queue PATH               what waits in a device's outbox and what it dropped (read-only)
  subject ...              data subject's rights: export, erase (python -m edge subject -h)
  provision DIR            certificates, app key, Mosquitto and agent configs for one device
"""


def _lazy(module: str) -> Callable[[list[str]], int]:
    def call(argv: list[str]) -> int:
        imported = __import__(module, fromlist=["main"])
        main: Callable[[list[str]], int] = imported.main
        return main(argv)

    return call


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "run": _lazy("edge.cli.daemon"),
    "check-config": lambda argv: _lazy("edge.cli.daemon")(["check-config", *argv]),
    "policy": _lazy("edge.cli.policy"),
    "audit": _lazy("edge.cli.audit"),
    "queue": _lazy("edge.cli.queue"),
    "subject": _lazy("edge.cli.subject"),
    "provision": _lazy("edge.cli.provision"),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print(USAGE)
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"error: unknown command {argv[0]!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    return command(argv[1:] if argv[0] != "run" else ["run", *argv[1:]])


def run() -> None:
    """``python -m edge``: exit with the command's status. Output piped into a reader that
    stops early (``| head``) ends quietly, as with any Unix tool."""
    try:
        status = main(sys.argv[1:])
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        status = 141  # 128 + SIGPIPE, what a shell reports for such a pipe
    sys.exit(status)


if __name__ == "__main__":
    run()
