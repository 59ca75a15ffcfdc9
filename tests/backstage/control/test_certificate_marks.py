"""The redirect marks of a Venue with its own user: its own hosts' only, in its own
root-owned folder, which its Acts find by name and cannot list."""

from __future__ import annotations

import os
import stat

from backstage.control.host.certificates import Certificates
from backstage.model import certificate
from backstage.model.layout import Layout, venue_https_marks, venue_run_dir
from backstage.model.spec import ProductionSpec


def test_a_user_venue_gets_the_marks_of_its_own_hosts_only(tmp_path):
    layout = Layout(str(tmp_path / "home"))
    os.makedirs(layout.home)
    spec = ProductionSpec(router="127.0.0.1:8000", https="127.0.0.1:8443")
    certs = Certificates(layout, lambda: spec)
    for host in ("shop.example.com", "other.example.org"):
        cert, key = certificate.self_signed(host)
        certs.install(host, cert, key)
    venue = str(tmp_path / "V")
    os.makedirs(venue_run_dir(venue))  # as the Manager makes it for the Venue's user
    gone = str(tmp_path / "Gone")  # a Venue whose run folder is not there: left alone

    certs.share({venue: ["SHOP.example.com", "nobody.example.com"], gone: ["x.example.com"]})
    certs.prepare()
    marks = venue_https_marks(venue)
    assert sorted(os.listdir(marks)) == ["shop.example.com", "shop.example.com:8000"]
    assert sorted(os.listdir(layout.https_marks)) == [
        "other.example.org", "other.example.org:8000", "shop.example.com", "shop.example.com:8000",
    ]  # fmt: skip
    for folder in (marks, os.path.dirname(marks)):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o711
    assert not os.path.exists(gone)
    assert certs.venues_of("shop.example.com") == [venue]

    # its certificate removed, the host is unmarked in both
    certs.remove("shop.example.com")
    assert os.listdir(marks) == []
    assert "shop.example.com" not in os.listdir(layout.https_marks)
    # the Venue books it no more: its certificate back, it is not marked there
    certs.share({venue: []})
    cert, key = certificate.self_signed("shop.example.com")
    certs.install("shop.example.com", cert, key)
    assert os.listdir(marks) == []


def test_a_write_under_way_in_the_marks_folder_is_left_to_finish(tmp_path):
    """`tls import` and a pass of the Manager may keep the folder at once: neither
    removes the other's temporary file before it takes its name."""
    layout = Layout(str(tmp_path / "home"))
    os.makedirs(layout.home)
    spec = ProductionSpec(router="127.0.0.1:8000", https="127.0.0.1:8443")
    certs = Certificates(layout, lambda: spec)
    cert, key = certificate.self_signed("shop.example.com")
    certs.install("shop.example.com", cert, key)
    under_way = os.path.join(layout.https_marks, ".a1b2c3.tmp")
    stale = os.path.join(layout.https_marks, "gone.example.com")
    for path in (under_way, stale):
        open(path, "w").close()
    Certificates(layout, lambda: spec).prepare()  # another process's pass
    assert sorted(os.listdir(layout.https_marks)) == [
        ".a1b2c3.tmp", "shop.example.com", "shop.example.com:8000",
    ]  # fmt: skip
