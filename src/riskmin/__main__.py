import os
import sys

from ._cli import main

code = main()
if int(os.environ.get("WORLD_SIZE", "1")) > 1:
    # One of torchrun's processes: its work is done, written and said. torch's gloo backend can abort in
    # its C++ teardown after Python has finished (about one run of two processes in ten on a 2-core VM),
    # which would turn a finished run into a failed one; so leave without that teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
raise SystemExit(code)
