"""A Sess: an Act playing on the Stage, seen only through its stats server."""

from __future__ import annotations

from dataclasses import dataclass

from emperor.stats import InstanceStats


@dataclass(frozen=True)
class SessWorker:
    id: int
    pid: int
    status: str  # idle, busy, cheap, pause, sig<N>
    accepting: bool
    requests: int
    exceptions: int
    harakiri: int  # requests killed for running past `harakiri`
    avg_rt: int  # microseconds, uWSGI's running blend
    rss: int  # bytes
    vsz: int
    tx: int  # bytes sent
    running_time: int  # microseconds spent serving
    last_spawn: int  # unix time
    respawns: int  # times uWSGI replaced this worker (its respawn_count starts at 1)


@dataclass(frozen=True)
class Sess:
    pid: int  # the vassal's master
    port: int | None
    workers: tuple[SessWorker, ...]

    @property
    def requests(self) -> int:
        return sum(w.requests for w in self.workers)

    @property
    def rss(self) -> int:
        return sum(w.rss for w in self.workers)

    @property
    def accepting(self) -> bool:
        """At least one worker takes requests: the Act serves."""
        return any(w.accepting for w in self.workers)

    @property
    def ready(self) -> bool:
        """Every worker has loaded the app and takes requests."""
        return bool(self.workers) and all(w.accepting for w in self.workers)

    @classmethod
    def from_stats(cls, stats: InstanceStats) -> Sess:
        return cls(
            pid=stats.pid,
            port=port_of(stats),
            workers=tuple(
                SessWorker(
                    id=w.id,
                    pid=w.pid,
                    status=w.status,
                    accepting=w.accepting,
                    requests=w.requests,
                    exceptions=w.exceptions,
                    harakiri=w.harakiri_count,
                    avg_rt=w.avg_rt,
                    rss=w.rss,
                    vsz=w.vsz,
                    tx=w.tx,
                    running_time=w.running_time,
                    last_spawn=w.last_spawn,
                    respawns=max(0, w.respawn_count - 1),
                )
                for w in stats.live_workers
            ),
        )


def port_of(stats: InstanceStats) -> int | None:
    """The port of the first TCP socket the instance listens on."""
    for sock in stats.sockets:
        host, sep, port = sock.name.rpartition(":")
        if sep and port.isdigit():
            return int(port)
    return None
