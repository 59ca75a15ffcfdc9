"""A hostile tenant: an Act of a Venue with its own user, and that user, trying to reach
root or another Venue through what they can write. Each way is asserted refused, and
the Act keeps serving what it served. Needs root: it creates the user."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import run_cli
from tests.helpers import http_get, poll
from tests.integration.test_bad_input import status_rows
from tests.integration.test_venue_user import (  # noqa: F401 (fixtures)
    pytestmark,
    system_user,
    user_venue,
)


def as_user(user: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", user, "--", "sh", "-c", script], capture_output=True, text=True
    )


def test_act_toml_cannot_run_a_command_as_root(production, user_venue, system_user, tmp_path):
    """`act set` refuses each option that runs a command or acts before the drop, in one
    line naming it; the user's own edit of act.toml makes the Act invalid with that line
    and it plays on as it was: the command never runs."""
    user = system_user.pw_name
    act = user_venue.new_act("Shop", processes=1)
    port = act.port
    assert http_get(port)[0] == 200
    pid = act.sess.pid
    marker = tmp_path / "ran-as-root"
    home = production.home
    for option, value in (
        ("hook-master-start", f"exec:touch {marker}"),
        ("exec-as-root", f"touch {marker}"),
        ("attach-daemon", f"touch {marker}"),
        ("cron", f"-1 -1 -1 -1 -1 touch {marker}"),
        ("route", f"^/ exec:touch {marker}"),
        ("import", "os"),
    ):
        done = run_cli("act", "set", act.ref.key, f"uwsgi.{option}={value}", home=home, check=False)
        assert done.returncode == 1, done
        assert done.stderr.count("\n") == 1 and f"[uwsgi] {option} is not an option" in done.stderr

    # the user owns the Act's folder: it replaces act.toml with one of its own
    spec_path = act.ref.spec_path
    edit = as_user(
        user,
        f"cat {spec_path} > {spec_path}.new && "
        f"printf '[uwsgi]\\nexec-as-root = \"touch {marker}\"\\n' >> {spec_path}.new && "
        f"mv {spec_path}.new {spec_path}",
    )
    assert edit.returncode == 0, edit.stderr
    row = poll(lambda: (r := status_rows(home)["Shop"])["state"] == "invalid" and r, 15)
    assert "[uwsgi] exec-as-root is not an option an Act may set" in row["problem"]
    assert http_get(port)[0] == 200
    assert row["pid"] == pid  # never restarted with it
    assert not os.path.exists(marker)

    # an option from the table is the user's to set, and is applied as the user
    fixed = as_user(
        user,
        f"sed -i 's/^exec-as-root = .*/harakiri = 30/' {spec_path}",
    )
    assert fixed.returncode == 0, fixed.stderr
    poll(lambda: status_rows(home)["Shop"]["state"] == "running", 30)
    assert act.spec.uwsgi == {"harakiri": 30}
    assert not os.path.exists(marker)
