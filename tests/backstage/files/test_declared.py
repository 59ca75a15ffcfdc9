"""Reading what a Production's files declare: which folders of a Venue are its Acts."""

from __future__ import annotations

import os

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
    ]
    assert "act.toml" in found.acts[1].error
    assert declared.act_names(venue) == ["Back", "Broken", "Front"]
