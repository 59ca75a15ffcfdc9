"""Control: what acts on the world. The Stage and its Manager, the Production Manager's
client and daemon, Acts' and bookings' control, the router, reading stats into a
Snapshot. It works on model data and the declared files, never on the public objects."""
