"""Views of a Production for people and programs elsewhere: the Prometheus text, the
HTTP servers that serve it, and the live dashboard.

Everything here reads plain Snapshot data and calls the callables it is given; it
imports no Production, Venue, Act or manager, so the daemon wires it and tests drive it
with recorded Snapshots.
"""
