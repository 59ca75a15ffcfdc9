"""Which Acts the announcer's rounds look at, worked out once per read of the files."""

from __future__ import annotations

from backstage.control.daemon.announcing import _cast
from backstage.files.declared import Declared, DeclaredAct
from backstage.model.layout import ActRef, Layout
from backstage.model.spec import ActSpec, ProductionSpec


def test_a_round_looks_only_at_acts_that_can_have_something_to_announce():
    layout = Layout("/tmp/home")

    def act(name, user="", **settings):
        ref = ActRef("V", "/tmp/V", name, user)
        return DeclaredAct(ref, ActSpec(name, 8000 + len(name), **settings))

    plain, booked_sleeper = act("Plain"), act("Sleeper", idle=60, hosts=("a.v.test",))
    user_act = act("Mine", user="alice", hosts=("b.v.test",))
    awake_booked = act("Awake", hosts=("c.v.test",))
    stopped = act("Stopped", enabled=False, idle=60, hosts=("d.v.test",))
    broken = DeclaredAct(ActRef("V", "/tmp/V", "Broken"), None, "unreadable")
    production = Declared(
        ProductionSpec(),
        (),
        (plain, booked_sleeper, user_act, awake_booked, stopped, broken),
    )
    cast = _cast(production, layout.pending)
    # pending hosts: an Act without a user only when its pending file is listed, found
    # by that file's name; a user's Act each round; none that is stopped or unreadable
    assert cast.by_pending == {
        "V.Plain": plain,
        "V.Sleeper": booked_sleeper,
        "V.Awake": awake_booked,
    }
    assert cast.users == (user_act,)
    # wake nodes: enabled Acts that may sleep and are booked
    assert cast.sleepers == (booked_sleeper,)
