"""The declared files: `production.toml`, `venue.toml` and `act.toml`, read into specs and
written atomically. What should run is here; nothing else is stored."""
