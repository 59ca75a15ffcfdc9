"""Releases of an Act from a git repository: deploy, rollback, a failing release step and
a release that never answers, all under a request loop with no failed request."""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from backstage.control.managers import releases
from backstage.errors import ReleaseFailed
from tests.conftest import cli, run_cli
from tests.helpers import RequestLoop, http_get
from tests.projects import VERSIONED_APP, commit_app, git, git_app


@pytest.fixture
def repo(tmp_path):
    return git_app(str(tmp_path / "repo"), "one")


@pytest.mark.slow
def test_deploy_rollback_and_releases_that_fail(venue, repo):
    act = venue.add_act("Rel", f"file://{repo}", wsgi="app:application")
    act.start()
    assert http_get(act.port) == (200, "one")
    with RequestLoop(act.port) as loop:
        loop.serves("one")
        commit_app(repo, "two")
        first = act.deploy()
        loop.serves("two")
        assert first.number == 1 and first.live
        commit_app(repo, "three")
        second = act.deploy()
        loop.serves("three")
        listed = act.releases
        assert [(r.number, r.live) for r in listed] == [(1, False), (2, True)]
        assert listed[1].sha == second.sha

        time.sleep(2)  # uWSGI's fork-bomb guard: no two chain reloads within a second
        asked = time.monotonic()
        act.rollback()
        served_old = loop.serves("two", since=asked) - asked
        assert [r.number for r in act.releases if r.live] == [1]

        # a release step that fails: nothing new is built, the live release serves on
        act.set('release=["false"]')
        commit_app(repo, "four")
        with pytest.raises(ReleaseFailed, match="release step 'false' failed"):
            act.deploy()
        assert len(act.releases) == 2
        act.set("release=[]")

        # a release that never answers is abandoned
        commit_app(repo, "hangs")
        with pytest.raises(ReleaseFailed, match="never answered"):
            act.deploy(timeout=4)
        assert [r.number for r in act.releases] == [1, 2]
        time.sleep(0.5)
        assert loop.served[-1][1] == "two"
    assert loop.failed == []
    listed = cli("releases", "TestVenue/Rel", home=venue.production.home).stdout.splitlines()
    assert [line.split()[:2] for line in listed] == [["*", "1"], ["2", second.sha]]
    done = run_cli(
        "deploy", "TestVenue/Rel", "no-such-ref", home=venue.production.home, check=False
    )
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert "has no branch or tag no-such-ref" in done.stderr
    assert [r.number for r in act.releases] == [1, 2]
    print(f"rollback served the old release after {served_old:.2f} s; {len(loop.served)} served")
    assert served_old < 2


def test_a_deploy_whose_fetch_fails_deploys_nothing(venue, repo, tmp_path):
    """The remote moved away between two commits, then its branch: a deploy says git's
    reason in one line and exits 1, builds nothing, and the running code serves on; a
    commit the clone has, named by its id (the live commit rebuilt), needs no remote."""
    act = venue.add_act("Fetched", f"file://{repo}", wsgi="app:application")
    act.start()
    commit_app(repo, "two")
    away = str(tmp_path / "away")
    os.rename(repo, away)
    done = cli("deploy", "TestVenue/Fetched", home=venue.production.home, check=False)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    said = done.stderr.strip()
    assert f"could not fetch from file://{repo}: '{repo}' does not appear" in said, said
    assert "check the remote and its access for root" in said, said
    assert act.releases == [] and not os.path.lexists(releases.staging(act.manager.ref))
    assert http_get(act.port) == (200, "one")
    with pytest.raises(ReleaseFailed, match="could not fetch from"):
        act.deploy("main")  # a branch may have moved on: the remote is asked

    os.rename(away, repo)
    git(repo, "branch", "-m", "main", "gone")  # the branch the clone follows, removed
    with pytest.raises(ReleaseFailed, match="couldn't find remote ref refs/heads/main"):
        act.deploy()
    git(repo, "branch", "-m", "gone", "main")
    first = act.deploy()
    assert http_get(act.port) == (200, "two")
    commit_app(repo, "three")
    os.rename(repo, away)
    again = act.deploy(first.sha)
    assert (again.number, again.sha) == (2, first.sha) and http_get(act.port) == (200, "two")


def test_a_deploy_of_another_branch_a_tag_or_a_commit_fetches_it(venue, repo):
    """The clone follows main one commit deep: a deploy of another branch, of a tag only
    that branch holds and of a commit by its full id fetches it and serves its code; a
    ref the remote lacks is one line, exit 1, and nothing is built."""
    git(repo, "checkout", "-q", "-b", "other")
    commit_app(repo, "other one")
    git(repo, "tag", "-a", "v1", "-m", "v1")
    commit_app(repo, "other two")
    git(repo, "checkout", "-q", "main")
    commit_app(repo, "main two")
    act = venue.add_act("Refs", f"file://{repo}", wsgi="app:application")
    home = venue.production.home
    act.start()
    assert http_get(act.port) == (200, "main two")
    cli("deploy", "TestVenue/Refs", "other", home=home)
    assert http_get(act.port) == (200, "other two")
    assert act.deploy("v1").live and http_get(act.port) == (200, "other one")
    main_one = subprocess.run(
        ["git", "-C", repo, "rev-parse", "main~1"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert act.deploy(main_one).sha == main_one[:12] and http_get(act.port) == (200, "one")
    for name, said in (
        ("gone", f"file://{repo} has no branch or tag gone: name one it has"),
        ("v1:refs/heads/x", "'v1:refs/heads/x' cannot name a branch, tag or commit"),
    ):
        done = run_cli("deploy", "TestVenue/Refs", name, home=home, check=False)
        assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert said in done.stderr, done.stderr
    assert [r.number for r in act.releases] == [1, 2, 3]
    assert not os.path.lexists(releases.staging(act.manager.ref))
    assert http_get(act.port) == (200, "one")


def test_user_errors_are_one_line_and_leave_nothing(venue):
    venue.new_act("Plain", start=False)
    home = venue.production.home
    for args, said in (
        (("deploy", "TestVenue/Plain"), "releases are for projects added"),
        (("rollback", "TestVenue/Plain"), "serves no release"),
        (("rollback", "TestVenue/Plain", "7"), "has no release 7"),
        (("deploy", "TestVenue/Nobody"), "Nobody"),
    ):
        done = run_cli(*args, home=home, check=False)
        assert done.returncode == 1, args
        assert len(done.stderr.strip().splitlines()) == 1 and said in done.stderr, done.stderr
    assert not os.path.exists(os.path.join(venue.path, "acts", "Plain", "releases"))


def test_a_folder_is_deployed_by_copy(venue, tmp_path):
    folder = str(tmp_path / "site")
    os.makedirs(folder)
    with open(os.path.join(folder, "app.py"), "w") as out:
        out.write(VERSIONED_APP.format(version="in place"))
    act = venue.add_act("Folder", folder, wsgi="app:application")
    act.start()
    assert http_get(act.port) == (200, "in place")
    # its start took a version of the folder, served through `current`
    assert act.spec.current and [(r.number, r.live) for r in act.releases] == [(1, True)]
    with open(os.path.join(folder, "app.py"), "w") as out:
        out.write(VERSIONED_APP.format(version="copied"))
    first = act.deploy()
    assert first.live
    assert http_get(act.port) == (200, "copied")
    with open(os.path.join(folder, "app.py"), "w") as out:
        out.write(VERSIONED_APP.format(version="copied again"))
    with RequestLoop(act.port) as loop:
        loop.serves("copied")
        act.deploy()
        loop.serves("copied again")
        time.sleep(2)
        act.rollback()
        loop.serves("copied")
    assert loop.failed == []
    assert [(r.number, r.live) for r in act.releases] == [(1, False), (2, True), (3, False)]
