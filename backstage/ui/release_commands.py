"""The development loop and releases: `backstage dev`, `deploy`, `releases`, `rollback`."""

from __future__ import annotations

import dataclasses
import json
import signal
import time

import click

from ..files.fs import LogFollower
from ..model.snapshot import human_size
from ..production import Production
from .devlog import dev_line
from .options import act_of, pass_production

# The signals that stop `dev` as Ctrl-C does.
STOPS = (signal.SIGTERM, signal.SIGHUP)


@click.command()
@click.argument("key", metavar="VENUE/NAME")
@pass_production
def dev(production: Production, key: str) -> None:
    """Develop an Act as with runserver, here in the foreground: it plays and is watched;
    each save is served once its pre-flight passes (a refused one is said, and the old
    code serves on); its requests print as they come. Ctrl-C stops watching; the Act
    plays on."""
    target = act_of(production, key)
    spec = target.spec
    follower = LogFollower(target.log_path)  # from here on: nothing of the start is missed
    # stopped by kill or a closed terminal as by Ctrl-C: what it changed is put back
    before = {number: signal.signal(number, signal.default_int_handler) for number in STOPS}
    try:
        if target.sess is None:
            target.start()
        if not spec.watch:
            target.set("watch=true")
        click.echo(f"{target.key} plays at http://127.0.0.1:{spec.port}/")
        _, router_port = production.spec.router.rsplit(":", 1)
        for host in spec.hosts:
            port = "" if router_port == "80" else f":{router_port}"
            click.echo(f"{target.key} plays at http://{host}{port}/ (through the router)")
        click.echo("Watching its code: every save is served. Ctrl-C stops watching.")
        while True:
            for line in follower.read().splitlines():
                shown = dev_line(line)
                if shown is not None:
                    click.echo(shown)
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        for number in STOPS:  # a second signal does not cut the restoring short
            signal.signal(number, signal.SIG_IGN)
        try:
            follower.close()
            if not spec.watch and target.spec.watch:
                target.set("watch=false")
                click.echo(f"\nStopped watching {target.key}; it plays on.")
        finally:
            for number, handler in before.items():
                signal.signal(number, handler)


@click.command()
@click.argument("key", metavar="VENUE/NAME")
@click.argument("commit", metavar="[REF]", required=False)
@click.option(
    "--timeout",
    default=30.0,
    show_default=True,
    help="Seconds the release has to answer, then to replace every worker.",
)
@pass_production
def deploy(production: Production, key: str, commit: str | None, timeout: float) -> None:
    """Build the next release of an Act (REF of its git source, default the newest
    commit; a folder is copied), check it answers beside the running one, then move the
    Act to it with no failed request."""
    done = act_of(production, key).deploy(commit, timeout)
    click.echo(f"{key}: release {done.number} ({done.sha}) serves")


@click.command("releases")
@click.argument("key", metavar="VENUE/NAME")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_production
def releases(production: Production, key: str, as_json: bool) -> None:
    """An Act's releases, from its folders: number, commit, when built, which is live."""
    target = act_of(production, key)
    found = target.releases
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in found], indent=2))
        return
    if not found:
        click.echo(f"{key} has no releases: `backstage deploy {key}` builds one")
    for r in found:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.built))
        click.echo(f"{'*' if r.live else ' '} {r.number:>4}  {r.sha}  {when}")
    data = target.shared_data
    if data:
        listed = ", ".join(f"{path} ({human_size(size)})" for path, size in data)
        click.echo(f"shared data in {target.ref.shared_dir}: {listed}")


@click.command()
@click.argument("key", metavar="VENUE/NAME")
@click.argument("number", metavar="[N]", type=int, required=False)
@pass_production
def rollback(production: Production, key: str, number: int | None) -> None:
    """Move an Act back to release N (default: the one before the live one), with no
    failed request."""
    done = act_of(production, key).rollback(number)
    click.echo(f"{key}: release {done.number} ({done.sha}) serves")


@click.command()
@click.argument("key", metavar="VENUE/NAME")
@click.option("-o", "--out", default=None, help="The archive (default VENUE.NAME-<time>.tar.gz).")
@pass_production
def backup(production: Production, key: str, out: str | None) -> None:
    """One archive of an Act's act.toml and its shared data (SQLite copied consistently
    with SQLite's backup API), while it serves."""
    target = act_of(production, key)
    path = target.backup(out)
    held = ", ".join(target.spec.shared) or "no shared data"
    click.echo(f"{key}: act.toml and {held} in {path}")


@click.command()
@click.argument("archive", metavar="FILE")
@click.argument("key", metavar="[VENUE/NAME]", required=False)
@pass_production
def restore(production: Production, archive: str, key: str | None) -> None:
    """Put an Act's shared data back from a backup, while it serves: into the Act it
    was made of, or VENUE/NAME. An Act that is gone is made again (not started)."""
    act, paths, made = production.restore(archive, key)
    restored = ", ".join(paths) or "nothing (it held no shared data)"
    if made:
        click.echo(
            f"{act.key}: made again with {restored}; start it: backstage act start {act.key}"
        )
    else:
        click.echo(f"{act.key}: restored {restored}")
