"""Errors of the uWSGI layer. The layer above turns them into its own errors at its edges."""

from __future__ import annotations


class UwsgiError(Exception):
    """Something uWSGI did, or could not be asked to do."""


class BinaryError(UwsgiError):
    """The uwsgi binary is missing or cannot be run."""


class StatsUnavailable(UwsgiError):
    """A stats server did not answer (not running, refused, or timed out)."""


class StatsUnparsable(UwsgiError):
    """A stats server answered with something that is not stats JSON."""


class FifoNotReading(UwsgiError):
    """No master is reading the master FIFO: the instance is not running."""


class EmperorStartError(UwsgiError):
    """The Emperor did not come up."""
