"""Talking to uWSGI: Emperors, their channels, master FIFOs and stats servers.

Pure functions build and parse what crosses the wire; thin classes do the I/O.
Nothing here knows what the processes it drives are used for.
"""
