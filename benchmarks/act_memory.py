"""An awake 1-worker Act's memory at rest, its config run several ways side by side.

Scaffolds a hello-world Django Act (`new_act`, one worker) on each Python asked for,
copies the vassal config Backstage renders for it, stops it, and runs `--acts` copies of
that config per way at once, each a plain `uwsgi --ini` on a port and run files of its
own (no Gigs), beside as many plain Pythons that built the same app:

as rendered    the config as it is
preloaded      its master also imports Django first (`djangopreload.py`), as an Act's
               does from two workers on
no stats       without the stats socket, the master FIFO and the metrics
64 apps        uWSGI's default app table (`max-apps`), 64 per worker, not 1
malloc_trim    its worker hands its freed heap back once the app is loaded (glibc's
               `malloc_trim` through `ctypes`), as it did before

Each copy serves 5 requests, then all are measured at once 2 s later: PSS of the master
and its workers, and their private pages (what the Act alone costs; PSS also shares out
the libraries' text, which depends on how many processes of that Python run). One run,
one machine: the ways of one Python are compared with each other; between Pythons, the
private column is the fairer one.

  python benchmarks/act_memory.py [--acts 3] [--python 3.12 --python 3.13]
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import time
from collections.abc import Sequence

from _common import arguments, free_ports, http_status, poll, print_table, production_in, scratch
from density import PLAIN_APP

SCRIPTS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "backstage", "scripts"
)
UNWATCHED = (
    "stats",
    "master-fifo",
    "enable-metrics",
    "metrics-no-cores",
    "metric",
    "final-route-if",
)


TRIM = """\
import ctypes

ctypes.CDLL(None).malloc_trim(0)
"""


def way(config: str, name: str, run: str) -> str:
    """The rendered config changed into one of the ways."""
    if name == "malloc_trim":  # after the warm-up's import, which loads the app
        path = os.path.join(run, "trim.py")
        with open(path, "w") as out:
            out.write(TRIM)
        return config + f"import = {path}\n"
    if name == "preloaded":
        return config + f"shared-import = {os.path.join(SCRIPTS, 'djangopreload.py')}\n"
    if name == "64 apps":
        return config.replace("\nmax-apps = 1\n", "\n")
    if name == "no stats":
        kept = [line for line in config.splitlines() if line.split(" =")[0] not in UNWATCHED]
        return "\n".join(kept) + "\n"
    return config


def copy(config: str, run: str, port: int, old_port: int, tag: str) -> str:
    """The config with its own port, name and run files: the Act's run files (sockets,
    stats, FIFO, env, Gigs) and log are named `<venue>.<act>.` in their folders."""
    stem = config.split("BACKSTAGE_ENV_FILE=")[1].split("\n")[0].rsplit("env.json", 1)[0]
    log = config.split("\nlogto = ")[1].split("\n")[0]
    with open(stem + "env.json") as env, open(os.path.join(run, f"{tag}.env.json"), "w") as out:
        out.write(env.read())
    procname = config.split("\nprocname-prefix-spaced = ")[1].split("\n")[0]
    return (
        config.replace(stem, os.path.join(run, f"{tag}."))
        .replace(procname, f"bsam {tag}")
        .replace(log, os.path.join(run, f"{tag}.log"))
        .replace(f"127.0.0.1:{old_port}\n", f"127.0.0.1:{port}\n")
    )


def rollup(pid: int) -> tuple[int, int]:
    """PSS and private bytes of one process."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as smaps:
        for line in smaps:
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit():
                fields[parts[0]] = int(parts[1]) * 1024
    return fields["Pss:"], fields["Private_Clean:"] + fields["Private_Dirty:"]


def children(pid: int) -> list[int]:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--acts", type=int, default=3, help="copies of each way")
    parser.add_argument("--python", action="append", default=[], help='"3.12": one more Python')
    args = arguments(parser, argv, acts=1)
    from backstage.shortcuts import new_venue

    mib = 2**20
    ways = ("as rendered", "preloaded", "no stats", "64 apps", "malloc_trim")
    with scratch("bsam-") as folder, production_in(folder) as production:
        run = os.path.join(folder, "copies")
        os.mkdir(run)
        # the dir channel: each vassal config is a file to copy
        production.declare(channel="dir")
        configs = production.layout.channel_target("dir")
        uwsgi_path = production.stage.binary.path
        started: list[tuple[str, str, subprocess.Popen[str], int]] = []
        try:
            for python in [None, *args.python]:
                venue = new_venue(f"M{len(started)}", folder, production, python=python)
                version = subprocess.run(
                    [venue.python, "-c", "import sys; print(sys.version.split()[0])"],
                    capture_output=True, text=True, check=True,
                ).stdout.strip()  # fmt: skip
                act = venue.new_act("A", processes=1)
                (rendered_path,) = glob.glob(os.path.join(configs, f"*.{venue.name}.A.ini"))
                with open(rendered_path) as rendered:
                    config = rendered.read()
                act.stop()
                served = os.path.realpath(os.path.join(act.path, "current"))
                for i in range(args.acts):
                    for name in ways:
                        port = free_ports(1)
                        tag = f"{version}-{ways.index(name)}-{i}"
                        path = os.path.join(run, f"{tag}.ini")
                        with open(path, "w") as out:
                            out.write(copy(way(config, name, run), run, port, act.spec.port, tag))
                        uwsgi = subprocess.Popen(
                            [uwsgi_path, "--ini", path], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
                        )  # fmt: skip
                        started.append((version, name, uwsgi, port))
                        if not poll(lambda port=port: http_status(port, timeout=10) == 200, 120):
                            print(f"{tag} did not serve: see {run}/{tag}.log")
                            return 1
                        for _ in range(4):
                            http_status(port, timeout=10)
                    plain = subprocess.Popen(
                        [venue.python, "-c", PLAIN_APP, f"{act.spec.package}.settings"],
                        cwd=served, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                    )  # fmt: skip
                    assert plain.stdout is not None and plain.stdout.readline() == "built\n"
                    started.append((version, "plain Python, the app built", plain, 0))
            time.sleep(2.0)  # pacing: what the last requests allocated settles
            rows: dict[tuple[str, str], list[tuple[int, int, int, int]]] = {}
            for version, name, process, _ in started:
                master = rollup(process.pid)
                workers = [rollup(pid) for pid in children(process.pid)]
                rows.setdefault((version, name), []).append(
                    (
                        master[0] + sum(w[0] for w in workers),
                        master[0],
                        sum(w[0] for w in workers),
                        master[1] + sum(w[1] for w in workers),
                    )
                )
        finally:
            for _, _, process, _ in started:
                if process.stdin:  # a plain Python
                    process.kill()
                else:
                    process.terminate()
            for _, _, process, _ in started:
                process.communicate()
    print(f"awake 1-worker hello-world Acts, {args.acts} of each way at once, at rest; "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    table = []
    for (version, name), measured in rows.items():
        pss = [m[0] / mib for m in measured]
        table.append(
            [
                version,
                name,
                f"{sum(pss) / len(pss):.1f} MiB ({min(pss):.1f}-{max(pss):.1f})",
                f"{sum(m[1] for m in measured) / len(measured) / mib:.1f} MiB",
                f"{sum(m[2] for m in measured) / len(measured) / mib:.1f} MiB",
                f"{sum(m[3] for m in measured) / len(measured) / mib:.1f} MiB",
            ]
        )
    print_table(["Python", "way", "PSS per Act", "master", "workers", "private"], table)
    print(
        "act memory: PSS at rest "
        + ", ".join(f"{row[0]} {row[1]} {row[2].split(' (')[0]}" for row in table)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
