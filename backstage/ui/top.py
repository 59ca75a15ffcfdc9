"""`backstage top`: the whole Production, live, in the manner of uwsgitop.

Three parts, so that all but the last are tested without a terminal:

- `View`: what the viewer chose (sort, filter, selection, the open Act, a pending
  confirmation, the last message), changed only by `handle_key`, a pure function
  that may also return a `Command` (quit, or an action on one Act);
- `render(snapshot, view, width, height)`: the screen as lines of (text, style)
  segments, never wider or taller than asked, whatever the size;
- `backstage.ui.terminal.run(production)`: a thin curses loop that takes a Snapshot
  every `interval`, draws what `render` returns and feeds keys to `handle_key`.

Actions call the same Act methods the CLI calls (`act.reload()`, `act.stop()`,
`act.start()`, `act.fifo("+")`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..act import Act
from ..model.snapshot import RESPONSE_CLASSES, ActRow, Snapshot
from .columns import act_table, daemons_line, emperor_line, worker_table
from .views import tls_mark

Segment = tuple[str, str]  # (text, style)
Line = list[Segment]

# Trouble first when sorting by state.
STATE_ORDER = {"invalid": 0, "failed": 0, "starting": 1, "running": 2, "sleeping": 2, "stopped": 3}

SORTS: dict[str, Callable[[ActRow], Any]] = {
    "name": lambda row: row.key,
    "rps": lambda row: -(row.rps or 0.0),
    "memory": lambda row: -row.rss,
    "state": lambda row: (STATE_ORDER.get(row.state, 9), row.key),
}

# key -> (action, whether it asks for a confirmation first)
ACTION_KEYS: dict[str, tuple[str, bool]] = {
    "c": ("reload", False),
    "x": ("stop", True),
    "g": ("start", True),
    "+": ("more", False),
    "-": ("less", False),
}

# The one command path: the same methods `backstage act ...` and `backstage fifo` call.
ACTIONS: dict[str, Callable[[Act], None]] = {
    "reload": lambda act: act.reload(),
    "stop": lambda act: act.stop(),
    "start": lambda act: act.start(),
    "more": lambda act: act.fifo("+"),
    "less": lambda act: act.fifo("-"),
}

HELP = "q quit  Enter open  / filter  o sort  O reverse  c reload  x stop  g start  +/- worker"
DETAIL_HELP = "Esc back  q quit  c reload  x stop  g start  +/- worker"


@dataclass(frozen=True)
class View:
    sort: str = "name"
    reverse: bool = False
    filter: str = ""
    editing: bool = False  # typing the filter
    selected: str | None = None  # an Act key: stays on its Act while rows re-sort
    top: int = 0  # the first row shown
    detail: str | None = None  # the Act opened with Enter
    confirm: tuple[str, str] | None = None  # (action, Act key) waiting for "y"
    message: str = ""
    busy: str = ""  # the action under way, if any


@dataclass(frozen=True)
class Command:
    action: str  # "quit" or a key of ACTIONS
    key: str = ""  # the Act


def visible(snapshot: Snapshot | None, view: View) -> list[ActRow]:
    """The Acts shown, filtered by text (on name and state) and sorted."""
    if snapshot is None:
        return []
    needle = view.filter.lower()
    rows = [
        row for row in snapshot.acts if needle in row.key.lower() or needle == row.state.lower()
    ]
    rows.sort(key=SORTS[view.sort], reverse=view.reverse)
    return rows


def body_height(height: int) -> int:
    """Rows of Acts that fit: minus the title, the column header and the footer."""
    return max(0, height - 3)


def _selected_index(rows: list[ActRow], view: View) -> int:
    keys = [row.key for row in rows]
    return keys.index(view.selected) if view.selected in keys else 0


def settle(view: View, rows: list[ActRow], height: int) -> View:
    """Keep the selection on a shown Act and the window of rows around it."""
    if not rows:
        return dataclasses.replace(view, selected=None, top=0)
    index = _selected_index(rows, view)
    room = max(1, body_height(height))
    top = min(max(view.top, index - room + 1), index)
    top = max(0, min(top, len(rows) - room))
    return dataclasses.replace(view, selected=rows[index].key, top=top)


# --- keys -------------------------------------------------------------------------------------


def handle_key(
    view: View, key: str, snapshot: Snapshot | None, height: int
) -> tuple[View, Command | None]:
    """The new View after `key`, and what to do, if anything. Keys are names: a printable
    character, "\\n", "ESC", "KEY_UP", "KEY_NPAGE", "KEY_BACKSPACE", "KEY_RESIZE"..."""
    rows = visible(snapshot, view)
    view = settle(dataclasses.replace(view, message=""), rows, height)  # read: a key dismisses it
    if view.confirm is not None:
        action, act = view.confirm
        if key in ("y", "Y"):
            return dataclasses.replace(view, confirm=None, message=""), Command(action, act)
        return dataclasses.replace(view, confirm=None, message=f"{action} cancelled"), None
    if view.editing:
        return _edit_filter(view, key, snapshot, height), None
    if key == "q":
        return view, Command("quit")
    if key in ("ESC", "KEY_LEFT", "KEY_BACKSPACE", "h") and view.detail:
        return dataclasses.replace(view, detail=None), None
    if key == "\n":
        if view.detail:
            return dataclasses.replace(view, detail=None), None
        return dataclasses.replace(view, detail=view.selected), None
    if key == "ESC" and view.filter:
        view = dataclasses.replace(view, filter="")
        return settle(view, visible(snapshot, view), height), None
    target = view.detail or view.selected
    if key in ACTION_KEYS:
        action, confirm = ACTION_KEYS[key]
        if target is None:
            return dataclasses.replace(view, message="no Act selected"), None
        if view.busy:
            return dataclasses.replace(view, message=f"wait: {view.busy}"), None
        if confirm:
            return dataclasses.replace(view, confirm=(action, target)), None
        return view, Command(action, target)
    if view.detail:
        return view, None
    if key == "/":
        return dataclasses.replace(view, editing=True), None
    if key == "o":
        names = list(SORTS)
        following = names[(names.index(view.sort) + 1) % len(names)]
        return dataclasses.replace(view, sort=following, message=f"sorted by {following}"), None
    if key == "O":
        return dataclasses.replace(view, reverse=not view.reverse), None
    return _move(view, key, rows, height), None


def _edit_filter(view: View, key: str, snapshot: Snapshot | None, height: int) -> View:
    if key in ("\n", "ESC"):
        text = view.filter if key == "\n" else ""
        view = dataclasses.replace(view, editing=False, filter=text)
    elif key == "KEY_BACKSPACE":
        view = dataclasses.replace(view, filter=view.filter[:-1])
    elif len(key) == 1 and key.isprintable():
        view = dataclasses.replace(view, filter=view.filter + key)
    return settle(view, visible(snapshot, view), height)


MOVES: dict[str, Callable[[int, int, int], int]] = {
    "KEY_UP": lambda i, n, page: i - 1,
    "k": lambda i, n, page: i - 1,
    "KEY_DOWN": lambda i, n, page: i + 1,
    "j": lambda i, n, page: i + 1,
    "KEY_PPAGE": lambda i, n, page: i - page,
    "KEY_NPAGE": lambda i, n, page: i + page,
    "KEY_HOME": lambda i, n, page: 0,
    "KEY_END": lambda i, n, page: n - 1,
}


def _move(view: View, key: str, rows: list[ActRow], height: int) -> View:
    if key not in MOVES or not rows:
        return view
    index = _selected_index(rows, view)
    index = max(0, min(len(rows) - 1, MOVES[key](index, len(rows), max(1, body_height(height)))))
    return settle(dataclasses.replace(view, selected=rows[index].key), rows, height)


# --- drawing ----------------------------------------------------------------------------------


def clip(line: Line, width: int) -> Line:
    """The segments of `line` cut to `width` characters in all."""
    out: Line = []
    room = width
    for text, style in line:
        if room <= 0:
            break
        text = text[:room]
        if text:
            out.append((text, style))
            room -= len(text)
    return out


def _printable(text: str) -> str:
    # A stray control or wide character would move the cursor off the cell the
    # clipping counted on: log lines are shown as plain ASCII.
    return "".join(c if " " <= c <= "~" else "?" for c in text.expandtabs(4))


def render(snapshot: Snapshot | None, view: View, width: int, height: int) -> list[Line]:
    """The screen: at most `height` lines of at most `width` characters each."""
    if width <= 0 or height <= 0:
        return []
    if snapshot is None:
        lines: list[Line] = [[("reading the Production...", "title")]]
    elif view.detail is not None:
        lines = _detail(snapshot, view, height)
    else:
        lines = _listing(snapshot, view, height)
    lines = lines[: height - 1] if height > 1 else []
    lines += [[]] * (height - 1 - len(lines))
    # what is wrong with the Act selected or open, where the keys' help is otherwise
    row = snapshot.act(view.detail or view.selected or "") if snapshot else None
    lines.append(
        _footer(view, f"{row.key} {row.state}: {row.reason}" if row and row.reason else "")
    )
    return [clip([(_printable(t), s) for t, s in line], width) for line in lines]


def _title(snapshot: Snapshot) -> Line:
    clock = time.strftime("%H:%M:%S", time.localtime(snapshot.wall))
    style = "title" if snapshot.emperor.running else "error"
    return [(f"{clock}  {emperor_line(snapshot)}", style)]


def _listing(snapshot: Snapshot, view: View, height: int) -> list[Line]:
    rows = visible(snapshot, view)
    view = settle(view, rows, height)
    table = act_table(snapshot, rows)
    lines: list[Line] = [_title(snapshot), [(table[0], "header")]]
    shown = rows[view.top : view.top + body_height(height)]
    texts = table[1 + view.top : 1 + view.top + len(shown)]
    for row, text in zip(shown, texts, strict=True):
        if row.key == view.selected:
            lines.append([(text, "selected")])
        else:
            lines.append(_state_coloured(text, row))
    if not rows:
        lines.append([("no Act matches" if view.filter else "no Acts yet", "dim")])
    return lines


def _state_coloured(text: str, row: ActRow) -> Line:
    """The row with its STATE cell in the state's colour."""
    start = text.find(row.state, len(row.key))
    if start < 0:
        return [(text, "normal")]
    end = start + len(row.state)
    return [(text[:start], "normal"), (row.state, row.state), (text[end:], "normal")]


def _detail(snapshot: Snapshot, view: View, height: int) -> list[Line]:
    row = snapshot.act(view.detail or "")
    if row is None:
        return [_title(snapshot), [(f"{view.detail} is gone", "error")]]
    summary = (
        f"{row.key}  {row.state}  pid {row.pid or '-'}  port {row.port}  "
        f"workers {row.workers}{f' of {row.max_workers}' if row.max_workers else ''}, "
        f"{row.busy} busy  {row.requests} req  "
        f"{'-' if row.rps is None else f'{row.rps:.1f}'} req/s  lq {row.listen_queue}"
    )
    if row.responses is not None:
        counts = zip(RESPONSE_CLASSES, row.responses, strict=True)
        summary += "  " + " ".join(f"{name} {count}" for name, count in counts)
    if row.gigs is not None:
        marked = [
            f"{host}[{mark}]" if (mark := tls_mark(snapshot, host)) else host for host in row.gigs
        ]
        summary += f"  gigs {','.join(marked) or '-'}"
    table = worker_table(row)
    lines: list[Line] = [[(summary, row.state)], [(table[0], "header")]]
    lines += [[(text, "normal")] for text in table[1:]]
    if not row.worker_rows:
        lines.append([("no workers: not playing", "dim")])
    if row.daemons:
        lines.append([(f"also runs: {daemons_line(row)}", "normal")])
    if row.refused:
        lines.append([(f"save refused, the old code serves: {row.refused}", "error")])
    lines.append([(f"log {row.log_path}", "header")])
    room = height - 1 - len(lines)
    log_lines = list(row.log_tail or ())
    if room > 0:
        lines += [[(text, "normal")] for text in log_lines[-room:]]
    return lines


def _footer(view: View, reason: str = "") -> Line:
    if view.confirm is not None:
        action, key = view.confirm
        return [(f"{action} {key}? y to confirm, any other key cancels", "confirm")]
    if view.editing:
        return [(f"filter: {view.filter}_", "confirm")]
    if view.busy:
        return [(f"{view.busy}...", "confirm")]
    if view.message:
        return [(view.message, "message")]
    if reason:
        return [(reason, "error")]
    shown = f"  [filter: {view.filter}]" if view.filter else ""
    order = f"  [sort: {view.sort}{' reversed' if view.reverse else ''}]"
    return [((DETAIL_HELP if view.detail else HELP) + order + shown, "dim")]
