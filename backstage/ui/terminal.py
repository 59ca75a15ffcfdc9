"""`backstage top` on a terminal: a thin curses loop around `top.render` and
`top.handle_key`.

It takes a Snapshot every `interval`, draws what `render` returns and feeds keys to
`handle_key`. Actions run in one worker thread, so a start waiting for its Act never
freezes the screen; the footer says what is under way. curses rather than Textual: it
is in the standard library, starts in milliseconds and costs little CPU when
refreshing fifty Acts a second.
"""

from __future__ import annotations

import curses
import dataclasses
import logging
import queue
import sys
import threading
import time
from typing import Any

from ..errors import BackstageError
from ..model.snapshot import Snapshot
from ..production import Production
from .top import ACTIONS, Command, Line, View, handle_key, render

log = logging.getLogger(__name__)


class _Worker:
    """Runs one Act action at a time off the drawing thread; results come back as messages."""

    def __init__(self, production: Production) -> None:
        self.production = production
        self.results: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.busy = ""

    def start(self, command: Command) -> None:
        self.busy = f"{command.action} {command.key}"
        thread = threading.Thread(target=self._run, args=(command,), daemon=True)
        thread.start()

    def _run(self, command: Command) -> None:
        try:
            act = self.production.act(command.key)
            ACTIONS[command.action](act)
            result = f"{command.key}: {command.action} done"
        except BackstageError as exc:
            result = f"{command.key}: {str(exc).splitlines()[0]}"
        except Exception as exc:  # the screen must survive whatever an action raises
            log.exception("%s %s failed", command.action, command.key)
            result = f"{command.key}: {command.action} failed: {exc}"
        self.busy = ""
        self.results.put(result)


def key_name(code: int) -> str:
    if code in (10, 13, curses.KEY_ENTER):
        return "\n"
    if code == 27:
        return "ESC"
    if code in (8, 127, curses.KEY_BACKSPACE):
        return "KEY_BACKSPACE"
    if 32 <= code < 127:
        return chr(code)
    try:
        return curses.keyname(code).decode(errors="replace")
    except ValueError:
        return ""


def run(production: Production, interval: float = 1.0) -> None:
    """Show the Production until `q`."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise BackstageError(
            "backstage top draws on a terminal: run it in one, or use `backstage status --watch`"
        )
    curses.wrapper(_Loop(production, interval).main)


class _Loop:
    def __init__(self, production: Production, interval: float) -> None:
        self.production = production
        self.interval = interval
        self.worker = _Worker(production)
        self.styles: dict[str, int] = {}

    def _init_styles(self) -> None:
        colours = {"running": curses.COLOR_GREEN, "starting": curses.COLOR_YELLOW}
        colours.update(sleeping=curses.COLOR_BLUE)
        colours.update(failed=curses.COLOR_RED, invalid=curses.COLOR_RED, error=curses.COLOR_RED)
        colours.update(confirm=curses.COLOR_YELLOW, message=curses.COLOR_CYAN)
        self.styles = {
            "header": curses.A_REVERSE,
            "selected": curses.A_REVERSE | curses.A_BOLD,
            "title": curses.A_BOLD,
            "dim": curses.A_DIM,
            "stopped": curses.A_DIM,
        }
        if not curses.has_colors():
            return
        try:
            curses.start_color()
            curses.use_default_colors()
            background = -1
        except curses.error:
            background = curses.COLOR_BLACK
        for number, (style, colour) in enumerate(colours.items(), start=1):
            try:
                curses.init_pair(number, colour, background)
            except curses.error:
                continue
            self.styles[style] = curses.color_pair(number) | (
                curses.A_BOLD if style in ("error", "failed") else 0
            )

    def main(self, screen: Any) -> None:
        try:
            curses.curs_set(0)
        except curses.error:
            pass
        curses.set_escdelay(25)  # Esc goes back at once, not after curses' default second
        self._init_styles()
        screen.timeout(100)  # wake for keys and action results between refreshes
        view, snapshot = View(), None
        due = 0.0
        opened = view.detail
        while True:
            changed = False
            if time.monotonic() >= due or view.detail != opened:
                opened = view.detail
                snapshot, view = self._refresh(snapshot, view)
                due = time.monotonic() + self.interval
                changed = True
            while not self.worker.results.empty():
                view = dataclasses.replace(view, message=self.worker.results.get())
                due = 0.0  # show the outcome of the action at once
                changed = True
            if view.busy != self.worker.busy:
                view = dataclasses.replace(view, busy=self.worker.busy)
                changed = True
            height, width = screen.getmaxyx()
            if changed:
                self._draw(screen, render(snapshot, view, width, height))
            code = screen.getch()
            if code == -1:
                continue
            key = key_name(code)
            height, width = screen.getmaxyx()
            if key == "KEY_RESIZE":
                # The terminal reflowed what was on it: repaint every cell, not the difference.
                screen.clear()
            else:
                view, command = handle_key(view, key, snapshot, height)
                if command is not None and command.action == "quit":
                    return
                if command is not None:
                    self.worker.start(command)
                    view = dataclasses.replace(view, busy=self.worker.busy, message="")
            self._draw(screen, render(snapshot, view, width, height))

    def _refresh(self, snapshot: Snapshot | None, view: View) -> tuple[Snapshot | None, View]:
        try:
            fresh = self.production.snapshot(snapshot, detail=view.detail)
        except Exception as exc:  # a Production mid-change: keep the last picture, say why
            log.debug("snapshot failed", exc_info=True)
            return snapshot, dataclasses.replace(view, message=f"cannot read: {exc}")
        if view.message.startswith("cannot read"):
            view = dataclasses.replace(view, message="")
        return fresh, view

    def _draw(self, screen: Any, lines: list[Line]) -> None:
        screen.erase()
        for y, line in enumerate(lines):
            x = 0
            for text, style in line:
                try:
                    screen.addstr(y, x, text, self.styles.get(style, curses.A_NORMAL))
                except curses.error:
                    pass  # writing the bottom-right cell moves the cursor off screen
                x += len(text)
        screen.refresh()
