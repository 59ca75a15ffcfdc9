"""Rendering: vassal, gigs, router and nginx configs from plain data. Returns text and
writes nothing."""
