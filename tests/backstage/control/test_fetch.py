"""A git Act's deploy fetches the ref it names into its one-branch, one-commit-deep clone:
a real repository with two branches and tags, a real clone, real git."""

from __future__ import annotations

import os
import subprocess

import pytest

from backstage.control.managers.adoption import CLONE_DIR, git_clone
from backstage.control.managers.releases import _checkout, fetch, is_ref_name
from backstage.errors import InvalidSetting, NotFound
from backstage.model.layout import ActRef
from backstage.model.spec import ActSpec
from tests.projects import commit_app, git, git_app


def test_a_ref_name_is_a_branch_tag_or_commit_and_never_a_refspec_or_an_option():
    for name in ("main", "feature/x", "v1.4", "release-2", "a" * 40, "refs/tags/v1"):
        assert is_ref_name(name), name
    for name in ("", "a:b", "main:refs/heads/x", "-x", "--upload-pack=sh", "+main", "a b",
                 "a..b", "x@{1}", "HEAD~1", "main^", "v*", "a[b", "a\\b", "/main", "main/",
                 "a//b", ".hidden", "x/.y", "x.lock", "main.", "@", "a\nb"):  # fmt: skip
        assert not is_ref_name(name), name


@pytest.fixture
def clone(tmp_path):
    """A repository (main: "main two"; branch other: "other one" then "other two"; tag
    v1, annotated, on "main one"; tag light on "other one") and an Act's clone of it."""
    repo = git_app(str(tmp_path / "repo"), "main one")
    git(repo, "tag", "-a", "v1", "-m", "v1")
    git(repo, "checkout", "-q", "-b", "other")
    commit_app(repo, "other one")
    git(repo, "tag", "light")
    commit_app(repo, "other two")
    git(repo, "checkout", "-q", "main")
    commit_app(repo, "main two")
    ref = ActRef("V", str(tmp_path / "venue"), "A")
    source = os.path.join(ref.path, CLONE_DIR)
    os.makedirs(ref.path)
    git_clone(f"file://{repo}", source)
    return repo, ref, source


def _sha(repo: str, name: str) -> str:
    return subprocess.run(
        ["git", "-C", repo, "rev-parse", f"{name}^{{commit}}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def _shallow(source: str) -> bool:
    said = subprocess.run(
        ["git", "-C", source, "rev-parse", "--is-shallow-repository"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return said.stdout.strip() == "true"


def test_a_branch_a_tag_and_a_full_id_the_clone_lacks_are_fetched_one_commit_deep(clone):
    repo, ref, source = clone
    for name in ("other", "v1", "light", "refs/tags/v1", _sha(repo, "other~1"), None):
        assert fetch(ref, source, name) == _sha(repo, name or "main"), name
    assert _shallow(source)
    commit_app(repo, "main three")
    assert fetch(ref, source) == _sha(repo, "main")  # the branch the clone follows


def test_a_ref_the_remote_lacks_is_one_line_saying_what_to_name(clone):
    repo, ref, source = clone
    before = fetch(ref, source, "other")
    for name, said in (
        ("nosuch", f"file://{repo} has no branch or tag nosuch: name one it has"),
        (_sha(repo, "other")[:12], "name a branch or tag, or a commit by its full id"),
        ("0" * 40, f"file://{repo} gives no commit {'0' * 40} by its id: name a branch"),
    ):
        with pytest.raises(NotFound) as found:
            fetch(ref, source, name)
        assert said in str(found.value) and "\n" not in str(found.value), found.value
    with pytest.raises(InvalidSetting, match="'main:refs/heads/x' cannot name a branch"):
        fetch(ref, source, "main:refs/heads/x")
    # nothing of the clone changed: no ref written, the commit fetched before still read
    assert fetch(ref, source, "other") == before
    refs = subprocess.run(
        ["git", "-C", source, "for-each-ref", "--format=%(refname)"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert refs == ["refs/heads/main", "refs/remotes/origin/HEAD", "refs/remotes/origin/main"]


def test_a_commit_the_clone_has_is_built_by_its_short_id_without_the_remote(clone, tmp_path):
    repo, ref, source = clone
    sha = fetch(ref, source, "other")
    os.rename(repo, str(tmp_path / "away"))
    spec = ActSpec(name="A", port=8100, source=source, wsgi="app:application", current=True)
    into = os.path.join(ref.releases_dir, ".next")
    assert _checkout(spec, ref, sha[:12], into) == sha
    with open(os.path.join(into, "app.py")) as app:
        assert "other two" in app.read()
