"""`LastGood` on Emperor stats recorded from a real uWSGI 2.0.31 Emperor (those of
test_reconcile: B up and accepting in healthy.json, its master gone before its first
request in killed.json, blacklisted with attempt 0)."""

from __future__ import annotations

from backstage.model.lastgood import LastGood
from backstage.model.reconcile import Pushed
from tests.backstage.test_reconcile import B, recorded, want


def test_a_changed_config_uwsgi_refused_plays_the_one_last_served_with():
    healthy, killed = recorded("healthy"), recorded("killed")
    old, new = want(B), want(B, app="/tmp/rec/changed.py")
    served = LastGood().served({B: old}, healthy, {B: Pushed(old.digest, 0.0)})
    assert served.good[B] == old
    tried = served.pushed({B: new}, healthy)  # no failure counted then
    assert tried.judged(B, new, healthy).playing(B, new) is None  # listed: it may yet serve
    refused = tried.judged(B, new, killed)  # gone before its first request
    assert refused.playing(B, new) == old
    # refused while act.toml says the same, whatever is pushed meanwhile
    again = refused.pushed({B: old}, killed).judged(B, new, killed)
    assert again.playing(B, new) == old
    assert refused.playing(B, want(B, app="/tmp/rec/other.py")) is None  # changed again
    assert refused.forget([B]).playing(B, new) is None  # a start asks for it anew
    assert B not in refused.served({}, healthy, {}).good  # stopped: forgotten


def test_a_config_is_known_good_from_any_pass_that_sees_it_accepting():
    healthy = recorded("healthy")
    old, new = want(B), want(B, app="/tmp/rec/changed.py")
    pushed = LastGood().pushed({B: old}, healthy)  # still loading at its push's pass
    # the pass that withdraws it for a changed act.toml sees it accepting on the old
    assert pushed.served({B: new}, healthy, {B: Pushed(old.digest, 0.0)}).good[B] == old
    # adopted as it runs (a Manager started again): the config wanted is the one pushed
    assert LastGood().served({B: old}, healthy, {B: Pushed(old.digest, 0.0)}).good[B] == old


def test_no_fallback_without_a_failure_since_the_push_or_a_config_served_before():
    healthy, killed = recorded("healthy"), recorded("killed")
    old, new = want(B), want(B, app="/tmp/rec/changed.py")
    served = LastGood().served({B: old}, healthy, {B: Pushed(old.digest, 0.0)})
    # the old master's exit (withdrawn before its first request) was counted before
    # the push of the new config: not a failure of it
    counted = served.pushed({B: new}, killed)
    assert counted.judged(B, new, killed).playing(B, new) is None
    # never served with any config: nothing to fall back to
    fresh = LastGood().pushed({B: new}, healthy).judged(B, new, killed)
    assert fresh.playing(B, new) is None
    # a config not the one pushed last is not the one that failed
    assert served.pushed({B: old}, healthy).judged(B, new, killed).playing(B, new) is None


def test_an_asleep_vassal_keeps_no_config_pushed_in_mind():
    """Thousands may sleep: each would hold a rendered config; it wakes on the one wanted."""
    healthy, asleep = recorded("healthy"), recorded("listed_blacklisted_waiting")
    assert asleep.vassal(B).waiting
    old = want(B)
    tried = LastGood().pushed({B: old}, healthy)
    assert B in tried.tries and B not in tried.served({B: old}, asleep, {}).tries
