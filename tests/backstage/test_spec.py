from __future__ import annotations

import pytest

from backstage.errors import InvalidSetting
from backstage.files import declared as specs
from backstage.files import fs, tomlfile
from backstage.model.spec import ActSpec, ProductionSpec, VenueSpec


def test_round_trip_of_every_spec(tmp_path):
    for original in (
        ProductionSpec(ports=(9000, 9100), channel="dir", venues=("/a b/c", '/q"uote')),
        VenueSpec(name="V", python="3.11", domains=("example.com",), production="/h"),
        ActSpec(
            name="A",
            port=9001,
            processes=3,
            enabled=False,
            env={"K": "v=1 %x $(HOME)\nü", "_k2": ""},
        ),
    ):
        path = str(tmp_path / "x.toml")
        specs.dump(path, original)
        assert specs.load(type(original), path) == original


def test_unknown_keys_and_wrong_types_are_refused_with_the_file_named(tmp_path):
    path = tmp_path / "act.toml"
    path.write_text('name = "A"\nport = 9000\nprocesess = 2\n')
    with pytest.raises(InvalidSetting, match=r"act.toml: unknown setting 'procesess'"):
        specs.load(ActSpec, str(path))
    path.write_text('name = "A"\nport = "9000"\n')
    with pytest.raises(InvalidSetting, match="port must be an integer"):
        specs.load(ActSpec, str(path))
    path.write_text('name = "A"\nport = true\n')
    with pytest.raises(InvalidSetting, match="port must be an integer"):
        specs.load(ActSpec, str(path))
    path.write_text('name = "A"\n')
    with pytest.raises(InvalidSetting, match="port"):
        specs.load(ActSpec, str(path))
    path.write_text("name = \n")
    with pytest.raises(InvalidSetting, match="not valid TOML"):
        specs.load(ActSpec, str(path))
    prod = tmp_path / "production.toml"
    prod.write_text("ports = [9000, 8000]\n")
    with pytest.raises(InvalidSetting, match="first <= last"):
        specs.load(ProductionSpec, str(prod))


def test_writes_are_atomic_and_leave_no_temp_file(tmp_path):
    path = tmp_path / "a.toml"
    fs.write_atomic(str(path), tomlfile.dumps({"a": 1}))
    fs.write_atomic(str(path), tomlfile.dumps({"a": 2, "t": {"k": "v"}}))
    assert tomlfile.load(str(path)) == {"a": 2, "t": {"k": "v"}}
    assert [p.name for p in tmp_path.iterdir()] == ["a.toml"]
    with pytest.raises(TypeError):
        tomlfile.dumps({"a": 1.5})
    assert tomlfile.load(str(path)) == {"a": 2, "t": {"k": "v"}}  # unchanged on failure
    assert [p.name for p in tmp_path.iterdir()] == ["a.toml"]


def test_https_and_acme_settings_are_checked(tmp_path):

    with pytest.raises(InvalidSetting, match="router's HTTP address"):
        ProductionSpec(router="127.0.0.1:8000", https="127.0.0.1:8000")
    with pytest.raises(InvalidSetting, match="https"):
        ProductionSpec(https="nowhere")
    with pytest.raises(InvalidSetting, match=r"\[acme\] 'mail' is unknown"):
        ProductionSpec(acme={"mail": "a@example.com"})
    with pytest.raises(InvalidSetting, match="ca_bundle must be an absolute path"):
        ProductionSpec(acme={"ca_bundle": "ca.pem"})
    assert ProductionSpec(acme={"ca_bundle": ""}).acme == {"ca_bundle": ""}  # as README shows
    spec = ProductionSpec(https="0.0.0.0:443", acme={"email": "a@example.com"})
    assert spec.https_redirect and spec.acme == {"email": "a@example.com"}
    path = str(tmp_path / "production.toml")
    specs.dump(path, spec)
    assert "[acme]" in open(path).read() and specs.load(ProductionSpec, path) == spec
