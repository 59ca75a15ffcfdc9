"""The Manager raises its soft limit of open files for the Emperor it starts."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import resource
from backstage.control.daemon.loop import raise_open_files
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
raise_open_files(ceiling=CEILING)
print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)
"""


def soft_after(ceiling: int) -> tuple[int, int]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.replace("CEILING", str(ceiling))],
        capture_output=True,
        text=True,
        check=True,
    )
    soft, hard = done.stdout.split()
    return int(soft), int(hard)


def test_the_soft_limit_is_raised_to_the_ceiling_the_hard_one_permitting():
    soft, hard = soft_after(512)
    assert soft == (512 if hard < 0 else min(512, hard))
    # a ceiling above the hard limit stops at the hard limit
    soft, hard = soft_after(2**40)
    assert soft == (2**40 if hard < 0 else hard)
