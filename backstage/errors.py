"""The errors a Backstage user can meet. Each message says what to do next."""

from __future__ import annotations


class BackstageError(Exception):
    """Base of every error Backstage raises on purpose."""


class InvalidName(BackstageError, ValueError):
    """A Venue or Act name that cannot be a Python package."""


class InvalidHostname(BackstageError, ValueError):
    """A host or Venue domain that is not a valid DNS name."""


class NotBookable(BackstageError):
    """A host outside the Venue domains of the Act's own Venue."""


class InvalidSetting(BackstageError, ValueError):
    """A declared file or an argument with a value Backstage cannot use."""


class NotFound(BackstageError, LookupError):
    """A Venue, Act or Production that does not exist."""


class AlreadyExists(BackstageError):
    """Something by that name or at that path is already there."""


class PortBusy(BackstageError):
    """The port an Act needs is held by another process or Act."""


class VenueBuildError(BackstageError):
    """The virtual environment of a Venue could not be built."""


class StageError(BackstageError):
    """The Stage (the Production's Emperor) could not do what was asked."""


class NotRunning(BackstageError):
    """An operation that needs a playing Act found it stopped."""


class ActFailed(BackstageError):
    """An Act did not come up; `log_tail` holds the end of its log."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class ConfigRefused(ActFailed):
    """uWSGI ended the master an Act's changed config started before it served."""


class NotAProject(InvalidSetting):
    """A source folder in which Backstage finds no project it knows how to serve."""


class InstallFailed(BackstageError):
    """A project's requirements could not be installed into its Venue."""


class ReleaseFailed(BackstageError):
    """A release step (migrate, collectstatic, a declared command) failed; `log_tail`
    holds the last lines it printed."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class PreflightFailed(BackstageError):
    """New code that does not import (or does not pass Django's checks) in a separate
    process, so a reload would not serve it."""


class ProducerError(BackstageError):
    """PowerDNS (the Producer) could not be reached, or refused what Backstage asked."""
