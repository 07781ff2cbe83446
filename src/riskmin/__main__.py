"""`python -m riskmin` and the `riskmin` script: the command line of _cli/_main.py, Ctrl-C while it loads caught too."""

import os
import signal
import sys


def run() -> int:
    """The exit status of the command in sys.argv; Ctrl-C at any moment from here on is one line and status 130."""
    try:
        # argparse and Config: tens of milliseconds, where Ctrl-C would otherwise be a traceback
        from ._cli._main import closed_output, main
    except KeyboardInterrupt:
        # as _cli.main says it, torch's import included
        print("interrupted; nothing was written", file=sys.stderr)
        return 130
    code = main()
    # the command is done, and said so: a Ctrl-C now (a second one, quick on the first) would be a traceback from
    # torch's handlers at exit
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        sys.stdout.flush()  # what is still buffered: a closed output is found here, not in Python's exit
    except BrokenPipeError:
        return closed_output()
    return code


if __name__ == "__main__":
    code = run()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # One of torchrun's processes: its work is done, written and said. torch's gloo backend can abort in
        # its C++ teardown after Python has finished (about one run of two processes in ten on a 2-core VM),
        # which would turn a finished run into a failed one; so leave without that teardown.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    raise SystemExit(code)
