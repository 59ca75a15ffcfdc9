"""The crew that starts, signals and talks to processes: the Stage (the Emperor, or the
system one), the Production Manager's client and keeper, the router, the socket holder,
and the clean-up of what a dead process left."""
