"""Pure data: what Backstage reads and names, with no process or socket of its own."""
