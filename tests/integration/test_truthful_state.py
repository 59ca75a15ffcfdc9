"""Each state says what is wrong and what to do, alike in `status`, `act ls`, the
metrics and `gigs`: what is plainly wrong is refused at `act set`, what only shows
at run time (a hand edit, an Act that dies) is said with its reason."""

from __future__ import annotations

import json
import os
import re
import signal
import socket

from emperor.process import read_pidfile
from tests.chaos_helpers import small_act
from tests.conftest import cli, cli_quiet
from tests.gigs_helpers import named_act
from tests.helpers import http_get, poll


def _rows(home: str) -> dict[str, dict]:
    found = json.loads(cli("status", "--json", home=home, check=False).stdout)
    return {f"{row['venue']}/{row['act']}": row for row in found["acts"]}


def _edit(act, old: str, new: str) -> None:
    with open(act.spec_path) as file:
        text = file.read()
    changed = re.sub(old, new, text, count=1, flags=re.M)
    assert changed != text
    with open(act.spec_path, "w") as file:
        file.write(changed)


def test_a_taken_port_or_a_value_uwsgi_would_expand_is_refused_or_said(production, venue, caplog):
    alpha = small_act(venue, "Alpha", processes=1)
    beta = small_act(venue, "Beta", processes=1)
    home = production.home
    # plainly wrong: refused, one line, nothing written
    taken = cli_quiet(caplog, "act", "set", beta.key, f"port={alpha.port}", home=home)
    assert taken.returncode == 1, taken
    assert taken.stderr.strip() == (
        f"backstage: port {alpha.port} is Act {alpha.key}'s: pick another for {beta.key}"
    )
    with socket.socket() as outsider:
        outsider.bind(("127.0.0.1", 0))
        outsider.listen()
        busy = outsider.getsockname()[1]
        held = cli_quiet(caplog, "act", "set", beta.key, f"port={busy}", home=home)
    assert held.returncode == 1 and f"port {busy} is in use by another process" in held.stderr
    # a value the Act's checks take but its vassal config cannot hold (uWSGI would
    # drop the blank): refused by act set in one line, said at run time when edited in
    blank = cli_quiet(caplog, "act", "set", alpha.key, "uwsgi.add-header=X-Test: 1 ", home=home)
    assert blank.returncode == 1 and "blanks" in blank.stderr, blank
    assert len(blank.stderr.strip().splitlines()) == 1
    assert "add-header" not in open(alpha.spec_path).read()
    assert beta.spec.port != alpha.port
    # the same by hand: refused, with what to do, while what played plays on
    beta_port = beta.spec.port
    _edit(beta, r"^port = \d+$", f"port = {alpha.port}")
    _edit(alpha, r"\Z", '\n[uwsgi]\nadd-header = "X-Test: 1 "\n')
    poll(lambda: {r.state for r in production.snapshot().acts} == {"invalid"}, 30)
    rows = _rows(home)
    assert rows[beta.key]["state"] == rows[alpha.key]["state"] == "invalid", rows
    # Beta took Alpha's port, written after it, and Alpha played there: Beta is refused
    said = (
        f"port {alpha.port} is {alpha.key}'s: pick another (`backstage act set {beta.key} port=N`)"
    )
    assert said in rows[beta.key]["reason"] and "plays on" in rows[beta.key]["reason"]
    assert "blanks" in rows[alpha.key]["reason"] and "plays on" in rows[alpha.key]["reason"]
    assert http_get(alpha.port) == (200, "ok")  # its old config plays on
    assert http_get(beta_port) == (200, "ok")  # and Beta's, on its own old port
    table = cli("status", home=home).stdout
    assert f"{beta.key} invalid: its declaration cannot be used: {said}" in table
    assert f"{alpha.key} invalid: its declaration cannot be used" in table
    listed = cli("act", "ls", home=home).stdout.splitlines()
    assert f"{beta.key}\tinvalid\t" in "\n".join(listed)
    metrics = cli("metrics", home=home).stdout
    assert re.search(
        r'backstage_act_wrong\{venue="TestVenue",act="Beta",state="invalid",reason="its', metrics
    )
    # fixed by hand: the Act plays, and nothing is said any more
    _edit(alpha, r'^\[uwsgi\]\nadd-header = "X-Test: 1 "\n', "")
    _edit(beta, r"^port = \d+$", f"port = {alpha.port + 50}")
    # waited for in this process (a `status` process per look cost 0.25 s of CPU each)
    poll(lambda: all(row.reason == "" for row in production.snapshot().acts), 60)
    rows = _rows(home)
    assert all(row["reason"] == "" for row in rows.values()), [r["reason"] for r in rows.values()]
    assert http_get(alpha.port) == (200, "ok")
    # nothing is said while Beta restarts onto its new port: it serves there once up
    poll(lambda: http_get(alpha.port + 50) == (200, "ok"), 30)


def test_a_gig_whose_only_act_is_down_is_not_live(production, venue):
    venue.add_domain("truth.test")
    act = named_act(venue, "Lone")
    host = "lone.truth.test"
    act.book(host)
    router = production.router
    poll(lambda: http_get(router.port, host=host) == (200, "Lone"), 15)
    # nothing heals for a while (the Manager, its keeper and the Emperor, which would
    # respawn the master at once on its held socket, frozen), and the Act's master dies
    # with no unsubscribe: the router lists its node until a request comes
    frozen = [
        production.manager.pid(),
        read_pidfile(production.layout.keeper_pidfile),
        production.stage.pid(),
    ]
    assert None not in frozen
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        os.kill(act.sess.pid, signal.SIGKILL)
        poll(lambda: act.sess is None, 15)
        stats = router.stats()
        assert stats is not None and any(
            (s := stats.subscription(key)) is not None and s.nodes
            for key in (host, f"{host}:{router.port}")
        ), "the router should still list the dead node"
        snapshot = production.snapshot()
        gig = next(g for g in snapshot.gigs if g.host == host)
        assert not gig.playing and gig.booked == (act.key,)
        row = snapshot.act(act.key)
        assert row is not None and row.state in ("starting", "failed") and row.reason
        done = cli("status", home=production.home, check=False)
        assert "0 of 1 Gigs live" in done.stdout
        assert re.search(rf"^{act.key} (starting|failed): \S", done.stdout, re.M)
        shown = cli("gigs", home=production.home).stdout
        assert f"{host}  not playing (booked: {act.key})" in shown
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    # healed: live again
    poll(lambda: http_get(router.port, host=host) == (200, "Lone"), 30)
    poll(lambda: next(g for g in production.snapshot().gigs if g.host == host).playing, 15)
