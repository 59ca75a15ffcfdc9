"""A Venue's `user`, its pure parts: the name's checks, where its Acts' run files go,
and the vassal config that drops to it. The host's `nobody` stands for the user."""

from __future__ import annotations

import os
import pathlib
import pwd
import shutil
import tempfile

import pytest

from backstage.control.host import ownership
from backstage.errors import InvalidSetting, StageError
from backstage.files import declared
from backstage.files.account import account
from backstage.files.fs import write_atomic, write_if_changed
from backstage.model.layout import ActRef, Layout
from backstage.model.spec import ActSpec, ProductionSpec, VenueSpec
from backstage.render.stageset import StageSet, scripts_dir
from backstage.ui.production_commands import as_root_line

NOBODY = pwd.getpwnam("nobody")


def test_a_user_is_a_known_unprivileged_account():
    assert account("nobody") == account("nobody")
    assert (account("nobody").uid, account("nobody").gid) == (NOBODY.pw_uid, NOBODY.pw_gid)
    with pytest.raises(InvalidSetting, match=r"^user nosuchbstuser does not exist: create it"):
        account("nosuchbstuser")
    with pytest.raises(InvalidSetting, match="not a user name"):
        account("Bad Name")
    with pytest.raises(InvalidSetting, match="root"):
        account("root")


def test_venue_toml_checks_its_user(tmp_path):
    assert VenueSpec(name="V", python="3.11", user="nobody").user == "nobody"
    with pytest.raises(InvalidSetting, match="not a user name"):
        VenueSpec(name="V", python="3.11", user="Bad Name")
    # whether the host knows the user is asked as venue.toml is written or read
    path = str(tmp_path / "venue.toml")
    unknown = VenueSpec(name="V", python="3.11", user="nosuchbstuser")
    with pytest.raises(InvalidSetting, match="^user nosuchbstuser does not exist"):
        declared.dump(path, unknown)
    assert not os.path.exists(path)
    with open(path, "w") as out:
        out.write('name = "V"\npython = "3.11"\nuser = "nosuchbstuser"\n')
    with pytest.raises(InvalidSetting, match=f"^{path}: user nosuchbstuser does not exist"):
        declared.load(VenueSpec, path)
    # a Venue on another Python (its own uwsgi) may have a user too
    assert VenueSpec(name="V", python="3.12", user="nobody", own_uwsgi=True).runs_as == "nobody"


def test_a_venue_without_user_writes_and_reads_as_before(tmp_path):
    path = str(tmp_path / "venue.toml")
    declared.dump(path, VenueSpec(name="V", python="3.11"))
    assert "user" not in open(path).read()
    declared.dump(path, VenueSpec(name="V", python="3.11", user="nobody"))
    assert declared.load(VenueSpec, path).user == "nobody"


def test_a_user_venues_act_runs_from_the_venues_own_folders():
    layout = Layout("/h")
    plain, own = ActRef("V", "/v", "A"), ActRef("V", "/v", "A", "nobody")
    assert layout.act_stats(plain) == "/h/run/V.A.stats"
    assert layout.act_log(plain) == "/h/log/V.A.log"
    assert layout.pending(plain) == "/h/run/pending/V.A"
    # what the vassal makes or reads as the user: the user's folder
    assert layout.act_stats(own) == "/v/run/user/V.A.stats"
    assert layout.act_fifo(own) == "/v/run/user/V.A.fifo"
    assert layout.act_socket(own) == "/v/run/user/V.A.sock"
    assert layout.act_env(own) == "/v/run/user/V.A.env.json"
    assert layout.act_hosts(own) == "/v/run/user/V.A.hosts"
    assert layout.pending(own) == "/v/run/user/V.A.pending"
    assert layout.act_log(own) == "/v/log/V.A.log"
    # what it reads as root, or only root writes: root's folders
    assert layout.act_gigs(own) == "/v/run/V.A.gigs.ini"
    assert layout.withheld(own, "a.example") == "/v/run/withheld/V.A/a.example"
    assert scripts_dir(own) == "/v/run/V.A.bin"
    assert layout.act_wake(own) == "/h/run/V.A.wake"
    assert layout.act_refused(own) == "/h/run/refused/V.A"


def test_the_vassal_drops_to_the_user_and_logs_as_them():
    layout, spec = Layout("/h"), ActSpec(name="A", port=9123)
    ref = ActRef("V", "/v", "A", "nobody")
    text = StageSet().vassal(layout, ref, spec, account=account("nobody"))
    lines = text.splitlines()
    assert f"uid = {NOBODY.pw_uid}" in lines and f"gid = {NOBODY.pw_gid}" in lines
    assert lines.index(f"uid = {NOBODY.pw_uid}") < lines.index("master = true")
    assert "logto2 = /v/log/V.A.log" in lines and not any(
        line.startswith("logto =") for line in lines
    )
    assert "socket = /v/run/user/V.A.sock" in lines
    assert "stats = /v/run/user/V.A.stats" in lines
    plain = StageSet().vassal(layout, ActRef("V", "/v", "A"), spec)
    assert not any(line.startswith(("uid", "gid", "logto2")) for line in plain.splitlines())


def test_a_user_venues_act_takes_only_allowed_uwsgi_options(tmp_path):
    """uWSGI reads the config as root: a hand-edited act.toml with an option that runs a
    command makes the Act invalid, naming the option; one from the table is taken."""
    venue = tmp_path / "V"
    (venue / "acts" / "A").mkdir(parents=True)
    (venue / "acts" / "B").mkdir(parents=True)
    declared.dump(str(venue / "venue.toml"), VenueSpec(name="V", python="3.11", user="nobody"))
    (venue / "acts" / "A" / "act.toml").write_text(
        'name = "A"\nport = 9123\n[uwsgi]\nexec-as-root = "touch /tmp/x"\n'
    )
    (venue / "acts" / "B" / "act.toml").write_text(
        'name = "B"\nport = 9124\n[uwsgi]\nharakiri = 30\n'
    )
    home = tmp_path / "home"
    home.mkdir()
    declared.dump(str(home / "production.toml"), ProductionSpec(venues=(str(venue),)))
    bad, good = declared.read(Layout(str(home))).acts
    assert bad.spec is None and "[uwsgi] exec-as-root is not an option an Act may" in bad.error
    assert bad.ref.user == "nobody"
    assert good.spec is not None and good.spec.uwsgi == {"harakiri": 30}


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_run_files_are_given_to_the_user_before_they_take_their_name(tmp_path):
    owner = (NOBODY.pw_uid, NOBODY.pw_gid)
    path = str(tmp_path / "env.json")
    write_atomic(path, "{}", 0o600, owner)
    st = os.stat(path)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (*owner, 0o600)
    assert not write_if_changed(path, "{}", 0o600, owner)
    os.chown(path, 0, 0)
    assert write_if_changed(path, "{}", 0o600, owner)  # same text, wrong owner
    assert os.stat(path).st_uid == NOBODY.pw_uid
    # a link put in its place is replaced, never followed
    target = tmp_path / "target"
    target.write_text("root's")
    os.unlink(path)
    os.symlink(target, path)
    assert write_if_changed(path, "{}", 0o600, owner)
    assert not os.path.islink(path) and target.read_text() == "root's"
    assert os.stat(target).st_uid == 0


def test_status_says_once_which_venues_run_as_root():
    assert as_root_line(["V"]) == (
        "Venue V runs as root: set user = in venue.toml (`backstage venue set VENUE user=NAME`)"
    )
    assert as_root_line(["V", "W"]).startswith("Venues V, W run as root: ")


@pytest.fixture
def open_tmp():
    """A folder of the test's, open to others (pytest's own are 0700)."""
    folder = tempfile.mkdtemp(prefix="bsu", dir="/tmp")
    os.chmod(folder, 0o755)
    yield pathlib.Path(folder)
    shutil.rmtree(folder)


def test_a_venue_whose_python_its_user_cannot_read_is_refused(open_tmp):
    """Folders the test owns stand for the base Python's, `nobody` for the user: a
    closed folder anywhere on the way, or reached through a link, is named."""
    tmp_path = open_tmp
    base = tmp_path / "python"
    stdlib = base / "lib" / "python3.11"
    stdlib.mkdir(parents=True)
    venue = tmp_path / "Venue"
    venue.mkdir()
    (venue / "pyvenv.cfg").write_text(f"home = {base}/bin\nversion_info = 3.11.7\n")
    assert ownership.stdlib_of(str(venue)) == str(stdlib)
    for folder in (base, base / "lib", stdlib):
        folder.chmod(0o755)
    ownership.check_python(str(venue), "nobody")  # readable: nothing said
    ownership.check_python(str(venue), "")  # no user: nothing to check

    nobody = account("nobody")
    base.chmod(0o700)
    assert ownership.closed_to(nobody, str(stdlib), []) == f"{base} is 700"
    with pytest.raises(InvalidSetting) as refused:
        ownership.check_python(str(venue), "nobody")
    assert str(refused.value) == (
        f"user nobody cannot read the Venue's Python at {base} ({base} is 700): build the "
        "Venue on a Python nobody can read (such as /usr/bin/python3.11), or remove user = "
        "from venue.toml"
    )
    base.chmod(0o750)  # its group's: nobody in it passes
    assert ownership.closed_to(nobody, str(stdlib), [os.stat(base).st_gid]) is None
    base.chmod(0o755)
    stdlib.chmod(0o711)  # passable, not readable
    assert ownership.closed_to(nobody, str(stdlib), []) == f"{stdlib} is 711"
    stdlib.chmod(0o755)

    hidden = tmp_path / "hidden"
    hidden.mkdir(mode=0o700)
    (hidden / "real").mkdir(mode=0o755)
    (tmp_path / "link").symlink_to(hidden / "real")  # open by its link, not where it leads
    assert ownership.closed_to(nobody, str(tmp_path / "link"), []) == f"{hidden} is 700"

    packages = venue / "lib" / "python3.11" / "site-packages"
    packages.mkdir(parents=True)
    venue.chmod(0o755)
    ownership.check_python(str(venue), "nobody")
    venue.chmod(0o700)  # the Venue's own packages, in a folder closed to the user
    with pytest.raises(
        InvalidSetting,
        match=rf"^user nobody cannot read the Venue's packages at {packages} \({venue} is 700\): ",
    ):
        ownership.check_python(str(venue), "nobody")


def test_a_venues_own_user_name_is_short_predictable_and_its_own():
    from backstage.model.account import USER_NAME, own_user_name

    prefix = Layout("/srv/backstage").prefix
    assert own_user_name(prefix, "shop") == f"{prefix[:8]}-shop"
    assert own_user_name(prefix, "shop") == own_user_name(prefix, "shop")
    names = {
        own_user_name(prefix, venue)
        for venue in ("shop", "Shop", "SHOP", "x" * 40, "x" * 39 + "y", "a_b")
    }
    assert len(names) == 6  # Venues whose names differ in case or past the cut too
    assert all(USER_NAME.fullmatch(name) and len(name) <= 32 for name in names)
    assert own_user_name(Layout("/srv/other").prefix, "shop") != own_user_name(prefix, "shop")


def test_root_is_said_in_so_many_words():
    assert VenueSpec(name="V", python="3.11", user="root").runs_as == ""
    assert VenueSpec(name="V", python="3.11", user="nobody").runs_as == "nobody"
    assert ProductionSpec(venue_user="root").venue_user == "root"
    with pytest.raises(InvalidSetting, match=r'^venue_user = \'nobody\': write "root"'):
        ProductionSpec(venue_user="nobody")


def test_a_new_user_must_read_the_python_and_pass_to_the_folder():
    top = tempfile.mkdtemp(prefix="bnu", dir="/tmp")  # pytest's own folders are 0700
    try:
        os.chmod(top, 0o711)
        closed, opened = os.path.join(top, "closed"), os.path.join(top, "open")
        os.mkdir(closed, 0o700)
        os.mkdir(opened, 0o711)  # passable is enough for the Venue's parent
        assert ownership.closed_to(ownership.OTHERS, opened, (), last=0o1) is None
        assert ownership.closed_to(ownership.OTHERS, opened, ()) == f"{opened} is 711"
        why = ownership.closed_to(ownership.OTHERS, os.path.join(closed, "x"), (), last=0o1)
        assert why == f"{closed} is 700"
        why = ownership.why_no_new_user("/usr/bin/env", closed)  # no Python: the folder only
        assert why and why.startswith(f"that user could not reach its folder in {closed} ")
        assert ownership.why_no_new_user("/usr/bin/env", opened) is None
    finally:
        shutil.rmtree(top)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving files to another user needs root")
def test_a_venues_packages_are_given_to_its_user_and_its_own_uwsgi_kept_from_them(tmp_path):
    """bin/, lib/ and include/ (and uv's .lock) become the user's, never through a link;
    pyvenv.cfg and venue.toml stay root's; a Venue's own uwsgi left in bin/ by a build
    from before is moved to libexec/ first; and root takes the packages back."""
    venue = tmp_path / "V"
    packages = venue / "lib" / "python3.12" / "site-packages"
    packages.mkdir(parents=True)
    (packages / "mod.py").write_text("")
    (venue / "include").mkdir()
    (venue / "bin").mkdir()
    (venue / "bin" / "uwsgi").write_text("")
    os.chmod(venue / "bin" / "uwsgi", 0o755)
    outside = tmp_path / "outside"
    outside.write_text("")
    os.symlink(outside, packages / "link")
    (venue / "pyvenv.cfg").write_text("home = /usr/bin\n")
    declared.dump(str(venue / "venue.toml"), VenueSpec(name="V", python="3.12", own_uwsgi=True))
    user = account("nobody")

    ownership.give_packages(str(venue), user)
    for path in (venue / "bin", venue / "lib", packages, packages / "mod.py", venue / "include"):
        assert (os.lstat(path).st_uid, os.lstat(path).st_gid) == (user.uid, user.gid), path
    assert os.lstat(packages / "link").st_uid == user.uid
    assert os.stat(outside).st_uid == 0  # the link was not followed
    lock = os.stat(venue / ".lock")
    assert (lock.st_uid, lock.st_mode & 0o777) == (user.uid, 0o600)
    for path in (venue / "pyvenv.cfg", venue / "venue.toml", venue / "libexec" / "uwsgi"):
        assert os.stat(path).st_uid == 0, path
    assert not os.path.exists(venue / "bin" / "uwsgi")
    assert ownership.own_uwsgi(str(venue)) == str(venue / "libexec" / "uwsgi")

    os.chmod(venue / "libexec", 0o777)  # a binary run as root that others could swap
    with pytest.raises(StageError, match="writable by it alone"):
        ownership.own_uwsgi(str(venue))

    ownership.take_packages(str(venue))
    assert os.stat(packages / "mod.py").st_uid == 0 and os.stat(venue / ".lock").st_uid == 0
