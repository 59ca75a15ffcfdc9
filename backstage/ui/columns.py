"""How a Snapshot reads as a table: the columns `backstage top` and `backstage status` share.

Pure text: every function here returns strings, so both the curses view and the
plain command line print the same cells.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..model.snapshot import ActRow, Snapshot, WorkerRow, human_size


@dataclass(frozen=True)
class Column:
    title: str
    width: int  # at least; ACT and GIGS grow to fit
    right: bool  # numbers align right
    cell: Callable[[ActRow], str]


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _ms(microseconds: int) -> str:
    return f"{microseconds / 1000:.0f}ms" if microseconds else "-"


def _workers(row: ActRow) -> str:
    """busy/running/most; a snapshot recorded before it knew the most says busy/running."""
    return f"{row.busy}/{row.workers}" + (f"/{row.max_workers}" if row.max_workers else "")


def _if_playing(row: ActRow, text: str) -> str:
    return text if row.pid is not None else "-"


ACT_COLUMNS: tuple[Column, ...] = (
    Column("ACT", 8, False, lambda r: r.key),
    Column("STATE", 8, False, lambda r: r.state),
    Column("PID", 7, True, lambda r: str(r.pid) if r.pid else "-"),
    Column("PORT", 5, True, lambda r: str(r.port)),
    # busy / running / the most it may run (adaptive, or "+" on the FIFO)
    Column("WRK", 7, True, lambda r: _if_playing(r, _workers(r))),
    Column("REQ", 7, True, lambda r: _if_playing(r, str(r.requests))),
    Column("RPS", 6, True, lambda r: _if_playing(r, _rate(r.rps))),
    Column("AVG", 6, True, lambda r: _if_playing(r, _ms(r.avg_rt))),
    Column("RSS", 7, True, lambda r: _if_playing(r, human_size(r.rss))),
    Column("EXC", 4, True, lambda r: _if_playing(r, str(r.exceptions))),
    Column("HRK", 4, True, lambda r: _if_playing(r, str(r.harakiri))),
    Column("RSPWN", 5, True, lambda r: _if_playing(r, str(r.respawns))),
    Column("LQ", 3, True, lambda r: _if_playing(r, str(r.listen_queue))),
)
GIGS_COLUMN = Column("GIGS", 4, False, lambda r: ",".join(r.gigs or ()) or "-")

# In the manner of uwsgitop's worker table.
WORKER_COLUMNS: tuple[tuple[str, int, Callable[[WorkerRow], str]], ...] = (
    ("WID", 3, lambda w: str(w.id)),
    ("PID", 7, lambda w: str(w.pid)),
    ("STATUS", 6, lambda w: w.status),
    ("REQ", 7, lambda w: str(w.requests)),
    ("RPS", 6, lambda w: _rate(w.rps)),
    ("EXC", 4, lambda w: str(w.exceptions)),
    ("AVG", 6, lambda w: _ms(w.avg_rt)),
    ("RSS", 7, lambda w: human_size(w.rss)),
    ("TX", 7, lambda w: human_size(w.tx)),
    ("RUNT", 7, lambda w: _ms(w.running_time)),
    ("RSPWN", 5, lambda w: str(w.respawns)),
)


def act_columns(snapshot: Snapshot) -> tuple[Column, ...]:
    """The Act columns for this Snapshot: GIGS only where the Production has Gigs."""
    return ACT_COLUMNS + ((GIGS_COLUMN,) if snapshot.has_gigs else ())


def _join(cells: list[str], widths: list[int], right: list[bool]) -> str:
    return "  ".join(
        cell.rjust(width) if r else cell.ljust(width)
        for cell, width, r in zip(cells, widths, right, strict=True)
    ).rstrip()


def act_table(snapshot: Snapshot, rows: list[ActRow] | None = None) -> list[str]:
    """The header line, then one aligned line per Act (all of them unless `rows` given)."""
    rows = list(snapshot.acts) if rows is None else rows
    columns = act_columns(snapshot)
    cells = [[column.cell(row) for column in columns] for row in rows]
    # Widths fit every Act, shown or not, so columns stay put while scrolling or filtering.
    every = [[column.cell(row) for column in columns] for row in snapshot.acts]
    widths = [
        max([column.width, len(column.title)] + [len(line[i]) for line in every + cells])
        for i, column in enumerate(columns)
    ]
    right = [column.right for column in columns]
    header = _join([column.title for column in columns], widths, right)
    return [header] + [_join(line, widths, right) for line in cells]


def worker_table(row: ActRow) -> list[str]:
    widths = [width for _, width, _ in WORKER_COLUMNS]
    right = [title not in ("STATUS",) for title, _, _ in WORKER_COLUMNS]
    header = _join([title for title, _, _ in WORKER_COLUMNS], widths, right)
    lines = [
        _join([cell(w) for _, _, cell in WORKER_COLUMNS], widths, right) for w in row.worker_rows
    ]
    return [header] + lines


def emperor_line(snapshot: Snapshot) -> str:
    emperor = snapshot.emperor
    states: dict[str, int] = {}
    for row in snapshot.acts:
        states[row.state] = states.get(row.state, 0) + 1
    counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items())) or "no Acts"
    if emperor.running:
        where = f"Emperor pid {emperor.pid}, {emperor.channel} channel"
    else:
        where = "Emperor down"
    if not snapshot.manager.running:
        where += " (healing off: `backstage up` turns it on)"
    rates = [row.rps for row in snapshot.acts if row.rps is not None]
    rate = f", {sum(rates):.1f} req/s" if rates else ""
    return f"Production {snapshot.production}: {where}; {counts}{rate}"


def daemons_line(row: ActRow) -> str:
    """The Act's workers and cron jobs on one line: "worker celery 4242, cron tick"."""
    return ", ".join(f"{d.kind} {d.name}" + (f" {d.pid}" if d.pid else "") for d in row.daemons)
