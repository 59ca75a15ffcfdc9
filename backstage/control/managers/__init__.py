"""What the public objects ask of the world: the Act Manager (`acts`), adopting a project,
bookings, releases and versions, the development loop, backups, nginx files, reading a
Snapshot (`observe`), and the Producer's PowerDNS."""
