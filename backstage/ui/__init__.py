"""The interface: the `backstage` command, `backstage top` and the views they share. It
reads the Production through the public API and draws Snapshots."""
