from __future__ import annotations

import os

from backstage.control.releases import releases
from backstage.model.layout import ActRef
from backstage.model.spec import ActSpec
from backstage.render.stageset import project_view


def test_releases_are_read_from_their_folders_and_current(tmp_path):
    ref = ActRef("V", str(tmp_path), "A")
    for name in ("1-abcdef012345", "2-0123456789ab", ".3-building", "notes"):
        os.makedirs(os.path.join(ref.releases_dir, name))
    os.symlink("releases/1-abcdef012345", ref.current)
    found = releases(ref)
    assert [(r.number, r.sha, r.live) for r in found] == [
        (1, "abcdef012345", True),
        (2, "0123456789ab", False),
    ]
    assert releases(ActRef("V", str(tmp_path), "Other")) == []


def test_an_act_served_through_current_imports_from_it_first():
    ref = ActRef("V", "/v", "A")
    source = "/v/acts/A/src"
    spec = ActSpec(
        name="A", port=8100, source=source, wsgi="app:application", current=True,
        pythonpath=(source + "/lib", "/elsewhere"),
    )  # fmt: skip
    view = project_view(ref, spec)
    assert view.chdir == "/v/acts/A/current"
    assert view.pythonpath == ("/v/acts/A/current/lib", "/elsewhere", "/v/acts/A/current")
    plain = project_view(ref, ActSpec(name="A", port=8100, source=source, wsgi="app:application"))
    assert plain.chdir == source
