"""The interface: the `backstage` command, `backstage top` and the views they share, and
views for people and programs elsewhere (the Prometheus text, the HTTP servers that
serve it, the live dashboard). It reads the Production through the public API and draws
Snapshots; the metrics and dashboard modules read plain Snapshot data only and call the
callables they are given, so the daemon wires them and tests drive them with recorded
Snapshots."""
