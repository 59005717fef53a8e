"""``python -m jaxreg`` and the ``jaxreg`` command: signal handlers first, then the CLI.

A Ctrl-C in the first moments, while the CLI's modules still load, is held until
:mod:`jaxreg.cli`'s handler is in place, which then ends the command with its one line
(a KeyboardInterrupt raised inside an import printed a traceback).
"""

import os
import signal
import sys

# `python -m jaxreg` puts the working directory first on sys.path: a results folder opened from
# inside it could then shadow a module jaxreg imports later (json.py, csv.py). Searched last instead.
if sys.path and sys.path[0] in ("", os.getcwd()):
    sys.path.append(sys.path.pop(0))


def main() -> int:
    early = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: early.append(signum))
    from jaxreg import cli

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, cli._interrupt)
    if early:
        cli._SIGNALS.extend(early)
        cli._interrupted_exit()
    return cli.main()


if __name__ == "__main__":
    sys.exit(main())
