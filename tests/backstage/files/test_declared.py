"""Reading what a Production's files declare: which folders of a Venue are its Acts."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading

import pytest

from backstage.errors import InvalidSetting
from backstage.files import declared
from backstage.model.layout import Layout, acts_dir, venue_spec_path
from backstage.model.spec import ActSpec, ProductionSpec, VenueSpec


def test_only_folders_that_hold_an_act_toml_are_acts(tmp_path):
    venue = str(tmp_path / "Shop")
    layout = Layout(str(tmp_path / "home"))
    declared.create_home(layout, lambda: ProductionSpec(venues=(venue,)))
    os.makedirs(acts_dir(venue))
    declared.dump(venue_spec_path(venue), VenueSpec(name="Shop", python="3.11"))
    for name, port in (("Front", 8101), ("Back", 8102)):
        os.makedirs(os.path.join(acts_dir(venue), name))
        declared.dump(os.path.join(acts_dir(venue), name, "act.toml"), ActSpec(name, port))
    os.makedirs(os.path.join(acts_dir(venue), "notes"))  # a folder, no act.toml
    os.makedirs(os.path.join(acts_dir(venue), "odd", "act.toml"))  # act.toml a folder
    os.makedirs(os.path.join(acts_dir(venue), "linked"))  # act.toml a link to nothing
    os.symlink("/nowhere/act.toml", os.path.join(acts_dir(venue), "linked", "act.toml"))
    open(os.path.join(acts_dir(venue), "README"), "w").close()  # a file beside the Acts
    os.symlink("/nowhere", os.path.join(acts_dir(venue), "gone"))  # a dangling link
    broken = os.path.join(acts_dir(venue), "Broken")
    os.makedirs(broken)
    with open(os.path.join(broken, "act.toml"), "w") as out:
        out.write("port = [\n")

    found = declared.read(layout)
    assert [(act.ref.name, act.spec is not None) for act in found.acts] == [
        ("Back", True),
        ("Broken", False),  # declared, unreadable: shown with why, never dropped
        ("Front", True),
        ("linked", False),  # an act.toml that is no file is an Act gone invalid
        ("odd", False),
    ]
    assert "act.toml" in found.acts[1].error
    assert "is a link to /nowhere/act.toml, which is not there" in found.acts[3].error
    assert "is a folder" in found.acts[4].error
    assert declared.act_names(venue) == ["Back", "Broken", "Front", "linked", "odd"]


GOOD_PRODUCTION = 'ports = [8100, 8999]\nvenues = ["/srv/Shop"]\nrouter = "127.0.0.1:8000"\n'

# production.toml broken in every way a hand edit can: (what, the file's text or a
# maker, a word of the reason). None of them is ever read as "all defaults".
BROKEN_PRODUCTION = [
    ("not TOML", GOOD_PRODUCTION + "x = [\n", "not valid TOML"),
    ("binary", "\x00\xff garbage", "not valid TOML"),
    ("empty", "", "is empty"),
    ("only blanks", "  \n\n\t\n", "is empty"),
    ("only a comment", "# nothing here\n", "is empty"),
    ("reversed ports", GOOD_PRODUCTION.replace("8100, 8999", "8999, 8100"), "first <= last"),
    ("one port", GOOD_PRODUCTION.replace("[8100, 8999]", "[8100]"), "two integers"),
    ("port 0", GOOD_PRODUCTION.replace("8100, 8999", "0, 8999"), "first <= last"),
    ("a router without a port", GOOD_PRODUCTION.replace(":8000", ""), "router"),
    ("a router port 70000", GOOD_PRODUCTION.replace(":8000", ":70000"), "router"),
    ("a router port 0", GOOD_PRODUCTION.replace(":8000", ":0"), "router"),
    ("a router that is a word", GOOD_PRODUCTION.replace("127.0.0.1:8000", "nonsense"), "router"),
    ("an unknown key", GOOD_PRODUCTION + "bogus = 1\n", "unknown setting 'bogus'"),
    ("a wrong type", GOOD_PRODUCTION + 'processes = "2"\n', "processes must be"),
    ("processes 0", GOOD_PRODUCTION + "processes = 0\n", "processes = 0"),
    ("a bad channel", GOOD_PRODUCTION + 'channel = "tcp"\n', "channel"),
    ("venues not a list", GOOD_PRODUCTION.replace('["/srv/Shop"]', '"/srv/Shop"'), "venues"),
    ("a bad stage", GOOD_PRODUCTION + 'stage = "other"\n', "stage"),
]


def _write(path, text):
    with open(path, "w") as out:
        out.write(text)


@pytest.mark.parametrize(
    "what,text,reason", BROKEN_PRODUCTION, ids=[case[0] for case in BROKEN_PRODUCTION]
)
def test_a_broken_production_toml_leaves_the_last_good_one_playing(tmp_path, what, text, reason):
    layout = Layout(str(tmp_path / "home"))
    declared.create_home(layout, lambda: ProductionSpec())
    _write(layout.spec_path, GOOD_PRODUCTION)
    good = declared.production_spec(layout)  # read good once: the copy is kept
    assert good.venues == ("/srv/Shop",)
    _write(layout.spec_path, text)

    with pytest.raises(InvalidSetting) as refused:  # whoever would write it back
        declared.production_spec(layout)
    said = str(refused.value)
    assert reason in said and layout.spec_path in said and "\n" not in said, said

    playing, problem = declared.production_playing(layout)
    assert playing == good
    assert problem.startswith(said) and "the last good one plays" in problem
    found = declared.read(layout)
    assert found.production == good and found.problem == problem

    _write(layout.spec_path, GOOD_PRODUCTION.replace("8000", "8001"))  # fixed: it plays
    assert declared.production_playing(layout) == (
        dataclasses.replace(good, router="127.0.0.1:8001"),
        "",
    )


def test_production_toml_a_folder_or_gone_is_an_error_never_the_defaults(tmp_path):
    layout = Layout(str(tmp_path / "home"))
    declared.create_home(layout, lambda: ProductionSpec())
    _write(layout.spec_path, GOOD_PRODUCTION)
    good = declared.production_spec(layout)
    os.unlink(layout.spec_path)
    with pytest.raises(InvalidSetting, match="is gone: put it back"):
        declared.production_spec(layout)
    with pytest.raises(InvalidSetting, match="is gone"):
        declared.create_home(layout, lambda: ProductionSpec())  # not made anew, empty
    assert not os.path.exists(layout.spec_path)
    assert declared.production_playing(layout)[0] == good
    os.mkdir(layout.spec_path)
    with pytest.raises(InvalidSetting, match="Is a directory"):
        declared.production_spec(layout)
    assert declared.read(layout).production == good


def test_with_no_good_production_toml_ever_read_a_broken_one_is_an_error(tmp_path):
    layout = Layout(str(tmp_path / "home"))
    os.makedirs(layout.run_dir)
    _write(layout.spec_path, "")
    for read in (declared.production_spec, declared.production_playing, declared.read):
        with pytest.raises(InvalidSetting, match="is empty"):
            read(layout)


@pytest.mark.parametrize(
    "text,reason",
    [
        ("", "is empty: write its settings back: name"),
        ("# only a comment\n", "is empty"),
        ('name = "Shop"\n', "port missing: write port"),
        ("port = 8101\n", "name missing: write name"),
        ("x = 1\n", "unknown setting 'x'"),
    ],
)
def test_an_act_toml_without_what_it_must_say(tmp_path, text, reason):
    path = str(tmp_path / "act.toml")
    _write(path, text)
    with pytest.raises(InvalidSetting) as refused:
        declared.load(ActSpec, path)
    assert reason in str(refused.value) and "__init__" not in str(refused.value)


def _aged(path):
    """As if written a while ago: kept by what was read (not re-read while it settles)."""
    then = os.stat(path).st_mtime - 10
    os.utime(path, (then, then))


def _ports(layout):
    return {
        act.ref.name: act.spec.port if act.spec else act.error for act in declared.read(layout).acts
    }


def test_every_change_to_an_act_toml_is_seen_by_the_next_read_without_a_stat_each(tmp_path):
    """From a process's second read on, an act.toml is stat'ed only when inotify says it
    changed: an edit in place, a rename over it, a write through another link, the Act's
    folder or acts/ replaced, each seen by the very next read."""
    venue = str(tmp_path / "Shop")
    layout = Layout(str(tmp_path / "home"))
    declared.create_home(layout, lambda: ProductionSpec(venues=(venue,)))
    acts = acts_dir(venue)
    os.makedirs(acts)
    declared.dump(venue_spec_path(venue), VenueSpec(name="Shop", python="3.11"))

    def declare(name, port, folder=acts):
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        path = os.path.join(folder, name, "act.toml")
        _write(path, f'name = "{name}"\nport = {port}\n')
        _aged(path)
        return path

    front, back = declare("Front", 8101), declare("Back", 8102)
    assert _ports(layout) == _ports(layout) == {"Front": 8101, "Back": 8102}
    assert _ports(layout) == {"Front": 8101, "Back": 8102}  # known, not stat'ed

    with open(front, "r+") as edit:  # in place, the same size: only an event tells
        edit.write('name = "Front"\nport = 8111\n')
    _aged(front)
    assert _ports(layout) == {"Front": 8111, "Back": 8102}

    _write(back + ".new", 'name = "Back"\nport = 8112\n')  # renamed over it
    _aged(back + ".new")
    os.rename(back + ".new", back)
    assert _ports(layout) == {"Front": 8111, "Back": 8112}

    # a write through another link tells the other link's folder: never trusted
    os.link(back, str(tmp_path / "back.toml"))
    assert _ports(layout)["Back"] == 8112
    with open(tmp_path / "back.toml", "r+") as edit:
        edit.write('name = "Back"\nport = 8122\n')
    _aged(str(tmp_path / "back.toml"))
    assert _ports(layout)["Back"] == 8122

    # the Act's folder replaced by another
    os.rename(os.path.join(acts, "Front"), str(tmp_path / "old-front"))
    declare("Front", 8131)
    assert _ports(layout)["Front"] == 8131

    # acts/ replaced as a whole, its Acts' folders moved along
    assert _ports(layout) == _ports(layout)
    os.rename(acts, str(tmp_path / "old-acts"))
    declare("Front", 8141)
    declare("Back", 8142)
    assert _ports(layout) == {"Front": 8141, "Back": 8142}

    # the Venue's folder replaced: acts/ moves along and tells nothing, another is there
    assert _ports(layout) == _ports(layout)
    os.rename(venue, str(tmp_path / "old-venue"))
    os.makedirs(acts)
    declared.dump(venue_spec_path(venue), VenueSpec(name="Shop", python="3.11"))
    _aged(venue_spec_path(venue))
    declare("Front", 8151)
    declare("Back", 8152)
    assert _ports(layout) == {"Front": 8151, "Back": 8152}

    os.remove(os.path.join(acts, "Back", "act.toml"))
    assert _ports(layout) == {"Front": 8151}


def _front(tmp_path) -> tuple[Layout, str]:
    """A home with one Venue, Shop, whose one Act, Front, declares port 8101 in an
    act.toml old enough to be read at once: the home's Layout and that file's path."""
    venue = str(tmp_path / "Shop")
    layout = Layout(str(tmp_path / "home"))
    declared.create_home(layout, lambda: ProductionSpec(venues=(venue,)))
    os.makedirs(os.path.join(acts_dir(venue), "Front"))
    declared.dump(venue_spec_path(venue), VenueSpec(name="Shop", python="3.11"))
    path = os.path.join(acts_dir(venue), "Front", "act.toml")
    _write(path, 'name = "Front"\nport = 8101\n')
    _aged(path)
    return layout, path


def test_a_forked_child_trusts_nothing_its_parent_knew_unchanged(tmp_path):
    """The watches and their events stay with the process that made them: a child forked
    after two reads (the parent watching) reads an act.toml edited in place, the same
    size and aged, as it is now, not as the parent knew it."""
    layout, path = _front(tmp_path)
    assert _ports(layout) == _ports(layout) == _ports(layout) == {"Front": 8101}
    # forked while a read in another thread held the lock: the child's is its own
    holding, done = threading.Event(), threading.Event()

    def reading():
        with declared._unchanged.lock:
            holding.set()
            done.wait(10)

    reader = threading.Thread(target=reading)
    reader.start()
    assert holding.wait(10)
    child = os.fork()
    done.set()
    reader.join()
    if child == 0:  # pragma: no cover - the child's verdict is its exit status
        seen = 1
        try:
            signal.alarm(10)  # a read waiting on a lock nobody will release
            with open(path, "r+") as edit:
                edit.write('name = "Front"\nport = 8111\n')
            _aged(path)
            seen = 0 if _ports(layout) == _ports(layout) == {"Front": 8111} else 1
        finally:
            os._exit(seen)
    assert os.waitpid(child, 0)[1] == 0, "the child read what its parent knew"
    assert _ports(layout) == {"Front": 8111}  # and the parent saw the child's edit


def test_an_act_is_declared_with_the_mtime_of_what_was_read(tmp_path):
    """A judgment of an Act is about the act.toml it was read from: its mtime as read,
    whether parsed now or known from before, never a later one's."""
    layout, path = _front(tmp_path)
    first = os.stat(path).st_mtime_ns
    for _ in range(3):  # parsed, then known from the stamp, then known from the watch
        assert [act.mtime for act in declared.read(layout).acts] == [first]
    with open(path, "r+") as edit:
        edit.write('name = "Front"\nport = 8111\n')
    (found,) = declared.read(layout).acts
    assert found.spec is not None and found.spec.port == 8111
    assert found.mtime == os.stat(path).st_mtime_ns != first


def test_a_file_written_whole_is_read_at_once_and_one_edited_in_place_settles(
    tmp_path, monkeypatch
):
    # A fresh file is read again until two readings agree (an editor's truncate, then
    # write); what dump replaced whole carries its digest and needs no second reading.
    path = str(tmp_path / "act.toml")
    waits: list[float] = []
    monkeypatch.setattr(declared.time, "sleep", waits.append)
    declared.dump(path, ActSpec("Front", 8101))
    declared._loaded.clear()  # as in another process: the Manager reads what start wrote
    assert declared.load(ActSpec, path).port == 8101
    assert waits == []
    with open(path, "r+") as edited:  # in place: the same inode, its attribute kept
        text = edited.read().replace("8101", "8102")
        edited.seek(0)
        edited.truncate()
        edited.write(text)
    assert declared.load(ActSpec, path).port == 8102
    assert waits == [0.05]


def test_what_dump_keeps_of_a_file_is_what_reading_it_gives(tmp_path):
    # dump keeps what it wrote without parsing it back: every kind of value (lists,
    # tables, options, adaptive workers) reads back the same
    path = str(tmp_path / "act.toml")
    spec = ActSpec(
        "Front",
        8101,
        processes=1,
        max_processes=4,
        adaptive=True,
        env={"KEY": 'a "quoted" value; #not a comment'},
        hosts=("shop.example.com", "www.shop.example.com"),
        pythonpath=("/srv/shop/src",),
        workers={"queue": "python worker.py"},
        uwsgi={"buffer-size": 65535, "thunder-lock": True},
        idle=900,
        max_rss=300,
        watch_ignore=("*.log",),
    )
    declared.dump(path, spec)
    kept = declared.load(ActSpec, path)
    declared._loaded.clear()  # as in another process
    assert declared.load(ActSpec, path) == kept == spec


def test_one_act_read_alone_is_what_the_read_of_all_says_of_it(tmp_path):
    """`declared.act` (an Act's own state, its commands) says of one Act what `read`
    (status) says among the others: its name and hosts checked within its Venue, an
    unreadable act.toml or venue.toml making it invalid, with the same reason."""
    layout, path = _front(tmp_path)
    venue = os.path.dirname(os.path.dirname(os.path.dirname(path)))
    cases = [
        ("good", 'name = "Front"\nport = 8101\n', None),
        ("another Act's name", 'name = "Back"\nport = 8101\n', "write name"),
        ("a host outside", 'name = "Front"\nport = 8101\nhosts = ["x.org"]\n', "not a domain"),
        ("not TOML", "port = [\n", "not valid TOML"),
    ]
    for what, text, reason in cases:
        _write(path, text)
        _aged(path)
        (among,) = declared.read(layout).acts
        alone = declared.act(among.ref)
        assert (alone.spec, alone.error) == (among.spec, among.error), what
        assert (reason is None) == (alone.spec is not None), what
        assert reason is None or reason in alone.error, what
    _write(venue_spec_path(venue), "name = [\n")
    (among,) = declared.read(layout).acts
    assert declared.act(among.ref).error == among.error != ""
