"""The model: plain data and pure functions. Specs, names, domains, where everything of a
Production lives (the Layout), states, Sesses, Gigs and Snapshots, and `reconcile`.
Nothing here starts a process, opens a socket or reads a file."""
