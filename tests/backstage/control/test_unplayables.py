"""What the Production Manager says of the Acts it cannot play, as a wait reads it."""

from __future__ import annotations

import os

from backstage.control.host import unplayables
from backstage.model.layout import ActRef, Layout


def _act(tmp_path) -> tuple[Layout, ActRef]:
    layout = Layout(str(tmp_path / "home"))
    os.makedirs(os.path.dirname(layout.unplayable))
    ref = ActRef("V", str(tmp_path / "V"), "A")
    os.makedirs(ref.path)
    with open(ref.spec_path, "w") as spec:
        spec.write('name = "A"\n')
    return layout, ref


def test_a_reason_counts_only_from_a_pass_that_began_after_the_wait(tmp_path):
    layout, ref = _act(tmp_path)
    unplayables.publish(layout, {ref.key: (ref, "port 8001 is V/B's: pick another")}, 100.0)
    assert unplayables.why(layout, ref) == "port 8001 is V/B's: pick another"
    assert unplayables.why(layout, ref, since=100.0) == "port 8001 is V/B's: pick another"
    # found before the wait began: its cause may have been fixed since
    assert unplayables.why(layout, ref, since=100.5) == ""
    assert unplayables.read(layout, [ref]) == {ref.key: "port 8001 is V/B's: pick another"}


def test_a_reason_for_an_act_toml_changed_since_is_not_taken(tmp_path):
    layout, ref = _act(tmp_path)
    unplayables.publish(layout, {ref.key: (ref, "blanks")}, 100.0)
    stat = os.stat(ref.spec_path)
    os.utime(ref.spec_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert unplayables.why(layout, ref) == ""
    assert unplayables.read(layout, [ref]) == {}


def test_no_file_or_another_act_says_nothing(tmp_path):
    layout, ref = _act(tmp_path)
    assert unplayables.why(layout, ref) == ""
    other = ActRef("V", ref.venue_path, "B")
    unplayables.publish(layout, {other.key: (other, "blanks")}, 100.0)
    assert unplayables.why(layout, ref) == ""
    with open(layout.unplayable, "w") as broken:
        broken.write("[1, 2")
    assert unplayables.why(layout, ref) == ""


def test_a_reason_found_on_an_act_toml_fixed_while_the_pass_worked_is_not_taken(tmp_path):
    """The pass reads Beta's act.toml (a port that clashes), then Beta is fixed by hand,
    then the pass publishes what it found: it is about the act.toml it read, so nothing
    is said of the fixed one (stamped with the file's mtime at publishing, status named
    the clash of an Act fixed a moment before, until the next pass)."""
    from backstage.files import declared
    from backstage.model.spec import ProductionSpec, VenueSpec

    layout = Layout(str(tmp_path / "home"))
    venue = str(tmp_path / "V")
    declared.create_home(layout, lambda: ProductionSpec(venues=(venue,)))
    os.makedirs(os.path.join(venue, "acts", "B"))
    declared.dump(os.path.join(venue, "venue.toml"), VenueSpec(name="V", python="3.11"))
    ref = ActRef("V", venue, "B")
    with open(ref.spec_path, "w") as spec:
        spec.write('name = "B"\nport = 8001\n')
    (found,) = declared.read(layout).acts  # the pass reads
    with open(ref.spec_path, "w") as spec:  # fixed by hand meanwhile
        spec.write('name = "B"\nport = 8051\n')
    stat = os.stat(ref.spec_path)
    if stat.st_mtime_ns == found.mtime:  # a coarse clock: the fix is later all the same
        os.utime(ref.spec_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    why = {ref.key: (ref, "port 8001 is V/A's: pick another")}
    unplayables.publish(layout, why, 100.0, {ref.key: found.mtime})
    assert unplayables.why(layout, ref) == ""
    assert unplayables.read(layout, [ref]) == {}
