"""Control: what acts on the world. It works on model data and the declared files, never
on the public objects, in four tiers, each importing only from those below it:

- `daemon`: the Production Manager's loop and what only it runs (announcing, watching,
  waking);
- `managers`: what the public objects ask of the world (the Act Manager, adoption,
  bookings, releases and versions, the development loop, backups, nginx files,
  reading a Snapshot, the Producer);
- `processes`: the crew that starts, signals and talks to processes (the Stage and its
  Emperor, the Manager's client and keeper, the router, the socket holder);
- `build` (getting a version ready: its virtualenv, requirements, pre-flight and
  release steps) beside `host` (ports, users and modes, shared data, certificates and
  keys): leaf operations that know nothing of the tiers above.
"""
