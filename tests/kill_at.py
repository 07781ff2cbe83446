"""Run a riskmin command that SIGKILLs itself at a chosen moment of keeping its runs: the tests' stand-in for the
out-of-memory killer. Not a test module; the kill-and-resume tests start it as a script:

    python tests/kill_at.py CALL PHASE -- montecarlo lab1 --runs 12 ...

CALL counts the stacks or runs kept, from 1; PHASE says where, at that call, the process dies:
  before  the rows not yet written
  torn    the rows written, all but the second half of them, as a kill in the middle of a write leaves them
  after   the rows on disk
  result  every run kept, while the result's files are written (before summary.json); CALL is not used
Under torchrun, RANK names the one process that dies, and only in its first start (TORCHELASTIC_RESTART_COUNT 0).
"""

import os
import signal
import sys
from pathlib import Path


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> int:
    call, phase = int(sys.argv[1]), sys.argv[2]
    argv = sys.argv[sys.argv.index("--") + 1:]
    chosen = os.environ.get("KILL_RANK", "0") == os.environ.get("RANK", "0") and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0"

    import riskmin._files
    import riskmin._experiments._kept
    import riskmin._runs._rundir
    from riskmin._cli._main import main as command

    if chosen and phase == "result":
        def dying_write(path, data, write=riskmin._files.atomic_write):
            if Path(path).name == "summary.json":
                die()
            write(path, data)
        riskmin._files.atomic_write = riskmin._runs._rundir.atomic_write = dying_write
    elif chosen:
        keep, calls = riskmin._experiments._kept.Keeper.keep, []

        def dying_keep(self, group, rows):
            calls.append(group)
            if len(calls) != call:
                return keep(self, group, rows)
            if phase == "before":
                die()
            size = self.log.stat().st_size if self.log.exists() else 0
            keep(self, group, rows)
            if phase == "torn":
                written = self.log.stat().st_size - size
                os.truncate(self.log, size + written // 2)
            die()
        riskmin._experiments._kept.Keeper.keep = dying_keep
    return command(argv)


if __name__ == "__main__":
    sys.exit(main())
