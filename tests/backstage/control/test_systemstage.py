"""The system Emperor as a Stage, as far as no uWSGI is needed: which Stage a Production
gets, what its configs load, which links are its own, and what it says when there is no
Emperor to link to. Playing on a real Debian Emperor is tests/integration/test_system_stage.py."""

from __future__ import annotations

import configparser
import os

import pytest

from backstage import Production
from backstage.control.processes.stage import Stage
from backstage.control.processes.systemstage import SystemStage
from backstage.errors import InvalidSetting, StageError
from backstage.model.spec import ProductionSpec
from backstage.render.stageset import ACT_PLUGINS, ROUTER_PLUGINS, StageSet
from tests.backstage.test_stageset import lay_out
from tests.helpers import render_vassal


def _options(text: str) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(text)
    return parser["uwsgi"]


def test_the_own_emperor_is_the_default_and_stage_is_written_only_when_set(tmp_path):
    production = Production(str(tmp_path / "home"))
    production.create()
    assert isinstance(production.stage, Stage)
    assert not production.crew.stageset.modular
    with open(production.layout.spec_path) as written:
        assert "stage" not in written.read()
    production.declare(stage="system", system_vassals=str(tmp_path / "vassals"))
    assert isinstance(Production(production.home).stage, SystemStage)
    assert ProductionSpec().system_vassals == "/etc/uwsgi-emperor/vassals"  # Debian's


@pytest.mark.parametrize(
    "settings, complaint",
    [
        ({"stage": "debian"}, "stage = 'debian': write one of own, system"),
        ({"stage": "system", "system_vassals": "vassals"}, "absolute path"),
        ({"stage": "system", "system_stats": "stats"}, "--emperor-stats address"),
    ],
)
def test_stage_settings_are_checked(settings, complaint):
    with pytest.raises(InvalidSetting, match=complaint):
        ProductionSpec(**settings)


def test_configs_for_the_system_emperor_load_their_plugins_first(tmp_path):
    act = lay_out(tmp_path)
    own = render_vassal(act)
    assert "plugins" not in _options(own)  # the own Emperor's configs stay as they are
    act.production.declare(stage="system", system_vassals=str(tmp_path / "vassals"))
    production = Production(act.production.home)
    crew = production.crew
    text = crew.stageset.vassal(crew.layout, act.ref, act.spec)
    first = next(line for line in text.splitlines() if line and line[0] not in ";[")
    assert first == f"plugins = {ACT_PLUGINS}"  # before any option a plugin brings
    # and its vassals bind their own sockets: the system Emperor runs no wrapper of ours
    assert "fd://" in own and "fd://" not in text
    unheld = StageSet(crew.layout.templates_dir).vassal(crew.layout, act.ref, act.spec)
    assert text.replace(f"plugins = {ACT_PLUGINS}\n", "").endswith(unheld.split("[uwsgi]\n")[1])
    router = crew.router.render(crew.stageset)
    assert _options(router)["plugins"] == ROUTER_PLUGINS == "python3,corerouter,http"


def test_links_are_the_productions_own_and_withdrawn_by_removing_them(tmp_path):
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    production = Production(str(tmp_path / "home"))
    production.create()
    production.declare(stage="system", system_vassals=str(vassals))
    stage = production.stage
    assert isinstance(stage, SystemStage)
    prefix = production.layout.prefix
    os.makedirs(stage.configs)
    mine = f"{prefix}.V.A.ini"
    (tmp_path / "home" / "run" / "linked" / mine).write_text("[uwsgi]\n")
    os.symlink(os.path.join(stage.configs, mine), vassals / mine)
    for other in ("bs00000000.V.A.ini", "site.ini", f"{prefix}.notes.txt", f".{mine}.1"):
        (vassals / other).write_text("")
    assert stage.links() == [mine] == stage.playing()
    stage.manager.withdraw(mine)
    # its config stays; with no process of it left, it plays no more
    assert stage.links() == [] == stage.playing() and os.listdir(stage.configs) == [mine]
    assert sorted(os.listdir(vassals)) == sorted(
        ["bs00000000.V.A.ini", "site.ini", f"{prefix}.notes.txt", f".{mine}.1"]
    )


def test_no_emperor_to_link_to_is_said_in_one_line_and_nothing_is_written(tmp_path):
    production = Production(str(tmp_path / "home"))
    production.create()
    production.declare(stage="system", system_vassals=str(tmp_path / "absent"))
    stage = production.stage
    with pytest.raises(StageError, match="no directory .*absent: install uwsgi-emperor"):
        stage.manager.start()
    (tmp_path / "absent").mkdir()
    with pytest.raises(StageError, match="no uwsgi Emperor watches .*absent") as refused:
        stage.manager.push(f"{production.layout.prefix}.V.A.ini", "[uwsgi]\n")
    assert "\n" not in str(refused.value)
    assert stage.stats() is None and not stage.alive()
    assert os.listdir(tmp_path / "absent") == []
    with pytest.raises(StageError, match="cannot sleep on the system Emperor"):
        stage.manager.push(f"{production.layout.prefix}.V.A.ini", "", "127.0.0.1:9000")


def test_a_venue_on_the_system_emperor_is_on_the_plugins_python(tmp_path):
    production = Production(str(tmp_path / "home"))
    production.create()
    production.declare(stage="system", system_vassals=str(tmp_path))
    stage = production.stage
    assert isinstance(stage, SystemStage)
    if not os.access("/usr/bin/uwsgi", os.X_OK):
        pytest.skip("needs Debian's uwsgi (apt install uwsgi-core): /usr/bin/uwsgi is absent")
    embedded = stage.binary.python_major_minor
    assert stage.python_for(embedded) == "/usr/bin/python3"
    with pytest.raises(InvalidSetting, match="python 2.7: the system Emperor's python3 plugin"):
        stage.python_for("2.7")


def test_an_acts_processes_are_named_from_its_vassal(tmp_path):
    layout = Production(str(tmp_path / "home")).layout
    prefix = layout.prefix
    assert layout.act_processes(f"{prefix}.V.A.ini") == f"{prefix} V/A "
    for other in (f"{prefix}.router-1a2b3c4d.ini", "bs00000000.V.A.ini", f"{prefix}.V.ini"):
        assert layout.act_processes(other) is None
