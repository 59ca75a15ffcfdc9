"""`backstage top` drawn and driven on a Snapshot recorded from a real Production
(tests/backstage/data/snapshot.json: Shop/Storefront running with 2 workers and
traffic, Shop/Admin running, Shop/Reports stopped, Shop/Broken failed to import),
without a terminal."""

from __future__ import annotations

import dataclasses
import json

import pytest

from backstage.model.snapshot import Snapshot
from backstage.ui.columns import act_table
from backstage.ui.top import Command, View, handle_key, render
from tests.backstage.ui.fakes import many, recorded


@pytest.fixture
def snapshot() -> Snapshot:
    return recorded()


def text(lines) -> list[str]:
    return ["".join(t for t, _ in line) for line in lines]


def press(view, keys, snapshot, height=30):
    command = None
    for key in keys:
        view, command = handle_key(view, key, snapshot, height)
    return view, command


def test_round_trips_through_json(snapshot):
    assert Snapshot.from_dict(json.loads(json.dumps(snapshot.to_dict()))) == snapshot


def test_every_act_shows_with_its_state_in_colour(snapshot):
    lines = render(snapshot, View(), 120, 30)
    shown = text(lines)
    assert "Emperor pid 14214, zmq channel" in shown[0]
    assert shown[1].split()[:3] == ["ACT", "STATE", "PID"]
    body = shown[2:6]
    assert [line.split()[0] for line in body] == [
        "Shop/Admin",
        "Shop/Broken",
        "Shop/Reports",
        "Shop/Storefront",
    ]
    assert [line.split()[1] for line in body] == ["running", "failed", "stopped", "running"]
    assert lines[2] == [(shown[2], "selected")]  # the first row is selected
    assert ("failed", "failed") in lines[3] and ("stopped", "stopped") in lines[4]
    storefront = body[3].split()
    assert storefront[4] == "0/2" and storefront[5] == "31" and storefront[6] == "28.3"
    # adaptive workers: busy/running/the most it may run
    adaptive = dataclasses.replace(snapshot.acts[3], workers=1, busy=1, max_workers=4)
    grown = dataclasses.replace(snapshot, acts=(*snapshot.acts[:3], adaptive))
    assert text(render(grown, View(), 120, 30))[5].split()[4] == "1/1/4"
    assert "q quit" in shown[-1]
    assert "GIGS" not in shown[1]  # this Production has no Gigs


def test_gigs_column_only_where_the_production_has_gigs(snapshot):
    rows = tuple(dataclasses.replace(row, gigs=()) for row in snapshot.acts)
    rows = (dataclasses.replace(rows[0], gigs=("shop.example.com",)),) + rows[1:]
    with_gigs = dataclasses.replace(snapshot, acts=rows, has_gigs=True)
    shown = text(render(with_gigs, View(), 200, 30))
    assert shown[1].split()[-1] == "GIGS"
    assert shown[2].split()[-1] == "shop.example.com"


@pytest.mark.parametrize("width", [0, 1, 2, 10, 39, 40, 80, 200])
@pytest.mark.parametrize("height", [0, 1, 2, 3, 4, 10, 50])
@pytest.mark.parametrize("detail", [None, "Shop/Storefront", "Shop/Reports", "Shop/Gone"])
def test_never_draws_outside_the_screen(snapshot, width, height, detail):
    for snap in (snapshot, many(snapshot, 60), None):
        lines = render(snap, View(detail=detail, message="x" * 300), width, height)
        assert len(lines) == (height if width > 0 else 0)
        assert all(sum(len(t) for t, _ in line) <= width for line in lines)
        assert all(t.isascii() and t.isprintable() for line in lines for t, _ in line)


def test_sorting_by_rate_memory_state_and_reversed(snapshot):
    view = View()

    def order(view):
        return [line.split()[0] for line in text(render(snapshot, view, 150, 30))[2:6]]

    view, _ = press(view, ["o"], snapshot)
    assert view.sort == "rps"
    assert order(view)[:2] == ["Shop/Storefront", "Shop/Admin"]
    view, _ = press(view, ["o"], snapshot)
    assert view.sort == "memory" and order(view)[0] == "Shop/Storefront"
    view, _ = press(view, ["o"], snapshot)
    assert view.sort == "state" and order(view)[:2] == ["Shop/Broken", "Shop/Admin"]
    view, _ = press(view, ["O"], snapshot)
    assert order(view)[0] == "Shop/Reports"  # stopped last, reversed


def test_filter_by_text(snapshot):
    view, _ = press(View(), ["/", "s", "t", "o", "r"], snapshot)
    assert view.editing and text(render(snapshot, view, 100, 20))[-1] == "filter: stor_"
    view, _ = press(view, ["KEY_BACKSPACE", "r", "\n"], snapshot)
    assert not view.editing and view.filter == "stor"
    body = [line for line in text(render(snapshot, view, 150, 20))[2:] if line.strip()]
    assert body[0].startswith("Shop/Storefront") and "[filter: stor]" in body[-1]
    assert len(body) == 2  # one row and the footer
    view, _ = press(view, ["/", "z", "z", "z", "\n"], snapshot)
    assert "no Act matches" in text(render(snapshot, view, 100, 20))[2]
    view, _ = press(view, ["/", "ESC"], snapshot)
    assert view.filter == ""


def test_scrolling_keeps_the_selection_in_sight(snapshot):
    big = many(snapshot, 60)
    keys = sorted(row.key for row in big.acts)
    height = 10  # 7 rows of Acts between the title, the header and the footer
    view, _ = press(View(), ["KEY_DOWN"] * 9, big, height)
    assert view.selected == keys[9]
    lines = render(big, view, 120, height)
    assert [i for i, line in enumerate(lines) if line and line[0][1] == "selected"] == [8]
    assert [line.split()[0] for line in text(lines)[2:9]] == keys[3:10]
    view, _ = press(view, ["KEY_END"], big, height)
    assert text(render(big, view, 120, height))[8].split()[0] == keys[-1]
    view, _ = press(view, ["KEY_PPAGE"], big, height)
    assert view.selected == keys[-8]
    view, _ = press(view, ["KEY_HOME"], big, height)
    assert view.top == 0 and view.selected == keys[0]
    # a resize to fewer rows keeps the selected Act on screen
    view, _ = press(view, ["KEY_NPAGE", "KEY_NPAGE"], big, height)
    lines = render(big, view, 40, 5)
    assert [line[0][1] for line in lines[2:4]] == ["normal", "selected"]
    assert text(lines)[3].startswith(keys[14][:40])


def test_enter_opens_the_worker_table_and_log(snapshot):
    view, _ = press(View(), ["KEY_END", "\n"], snapshot)
    assert view.detail == "Shop/Storefront"
    shown = text(render(snapshot, view, 130, 40))
    assert shown[0].startswith("Shop/Storefront  running  pid 14222")
    assert shown[1].split() == [
        "WID", "PID", "STATUS", "REQ", "RPS", "EXC", "AVG", "RSS", "TX", "RUNT", "RSPWN",
    ]  # fmt: skip
    assert shown[2].split()[:5] == ["1", "14231", "idle", "19", "17.9"]
    assert shown[3].split()[:4] == ["2", "14232", "idle", "12"]
    assert shown[4].startswith("log /tmp/bstopx/home/log/Shop.Storefront.log")
    log_tail = snapshot.act("Shop/Storefront").log_tail
    assert shown[5 : 5 + len(log_tail)][-1] == log_tail[-1][:130]
    small = text(render(snapshot, view, 130, 8))
    assert small[5] == log_tail[-2][:130] and small[6] == log_tail[-1][:130]  # the newest lines
    view, _ = press(view, ["ESC"], snapshot)
    assert view.detail is None


def test_action_keys_name_the_selected_act_and_ask_before_stop_and_start(snapshot):
    view, command = press(View(), ["KEY_DOWN", "KEY_DOWN", "KEY_DOWN", "c"], snapshot)
    assert command == Command("reload", "Shop/Storefront")
    view, command = press(view, ["+"], snapshot)
    assert command == Command("more", "Shop/Storefront")
    view, command = press(view, ["-"], snapshot)
    assert command == Command("less", "Shop/Storefront")
    view, command = press(view, ["x"], snapshot)
    assert command is None and view.confirm == ("stop", "Shop/Storefront")
    assert "stop Shop/Storefront? y" in text(render(snapshot, view, 100, 20))[-1]
    view, command = press(view, ["n"], snapshot)
    assert command is None and view.message == "stop cancelled"
    view, command = press(view, ["x", "y"], snapshot)
    assert command == Command("stop", "Shop/Storefront")
    view, command = press(view, ["KEY_UP", "g", "y"], snapshot)
    assert command == Command("start", "Shop/Reports")
    busy = dataclasses.replace(view, busy="start Shop/Reports")
    assert text(render(snapshot, busy, 100, 20))[-1] == "start Shop/Reports..."
    view, command = press(busy, ["c"], snapshot)
    assert command is None and view.message.startswith("wait")
    assert press(View(), ["q"], snapshot)[1] == Command("quit")


def test_an_emperor_down_and_no_snapshot_yet_still_draw(snapshot):
    down = dataclasses.replace(
        snapshot, emperor=dataclasses.replace(snapshot.emperor, running=False, pid=None)
    )
    lines = render(down, View(), 120, 10)
    assert "Emperor down" in text(lines)[0] and lines[0][0][1] == "error"
    assert "reading" in text(render(None, View(), 120, 10))[0]
    view, command = press(View(), ["c"], None)
    assert command is None and view.message == "no Act selected"
    view, command = press(view, ["KEY_DOWN", "\n", "/", "x"], None)
    assert command is None and view.message == "" and view.filter == "x"


def test_status_table_is_aligned(snapshot):
    header, *lines = act_table(snapshot)
    assert len(lines) == 4
    state = header.index("STATE")
    assert [line[state:].split()[0] for line in lines] == [
        "running",
        "failed",
        "stopped",
        "running",
    ]
    for title in ("PID", "REQ", "RPS", "RSS", "LQ"):  # numbers end under their title's end
        end = header.index(title) + len(title)
        for line in lines:
            assert line[end - 1] != " " and line[end : end + 1] in ("", " "), (title, line)


def test_the_open_act_shows_its_responses_by_status_class(snapshot):
    row = snapshot.act("Shop/Storefront")
    counted = dataclasses.replace(row, responses=(120, 0, 3, 1))
    snap = dataclasses.replace(snapshot, acts=(counted,))
    text = "".join(t for line in render(snap, View(detail=row.key), 200, 30) for t, _ in line)
    assert "2xx 120 3xx 0 4xx 3 5xx 1" in text


def test_a_refused_save_shows_in_the_acts_view(snapshot):
    refused = "Shop.wsgi:application does not load: SyntaxError: expected ':'"
    acts = tuple(
        dataclasses.replace(row, refused=refused) if row.key == "Shop/Storefront" else row
        for row in snapshot.acts
    )
    shown = dataclasses.replace(snapshot, acts=acts)
    view = dataclasses.replace(View(), detail="Shop/Storefront")
    screen = text(render(shown, view, 120, 40))
    assert f"save refused, the old code serves: {refused}" in screen
    assert not any("save refused" in line for line in text(render(snapshot, view, 120, 40)))


def test_the_selected_or_open_acts_reason_is_in_the_footer(snapshot):
    why = "port 8001 is held by Shop/Other: give it a free one"
    acts = tuple(
        dataclasses.replace(row, state="starting", reason=why)
        if row.key == "Shop/Storefront"
        else row
        for row in snapshot.acts
    )
    shown = dataclasses.replace(snapshot, acts=acts)
    for view in (View(selected="Shop/Storefront"), View(detail="Shop/Storefront")):
        assert text(render(shown, view, 200, 30))[-1] == f"Shop/Storefront starting: {why}"
    others = [row.key for row in snapshot.acts if row.key != "Shop/Storefront"]
    if others:  # another Act selected: the keys' help, as ever
        assert why not in text(render(shown, View(selected=others[0]), 200, 30))[-1]
