"""Leaf operations on the host: ports, a Venue user's folders and modes, shared data,
certificates, ACME, signing keys, and what cannot play."""
