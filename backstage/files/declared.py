"""Reading and writing the declared files, and the whole Production read in one pass.

`read(layout)` loads `production.toml`, every Venue's `venue.toml` and every Act's
`act.toml` once: the Production Manager's pass and a Snapshot work from what it
returns, not from a file read per Act per question. A file that cannot be read
leaves only its own Venue or Act out, with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from ..errors import BackstageError, InvalidSetting, NotFound
from ..model.domains import domain_of
from ..model.layout import ActRef, Layout, acts_dir, unsafe_in_home, venue_spec_path
from ..model.spec import ActSpec, ProductionSpec, VenueSpec, from_dict, to_dict
from . import inotify, tomlfile
from .account import account
from .fs import write_atomic

S = TypeVar("S")


# A file rewritten in place (an editor's truncate then write) can be read half-written:
# one changed this recently is read again until two readings agree. One Backstage wrote
# (`dump`, replaced whole) carries the digest of its text in an extended attribute: a
# reading that matches it is the whole file, read at once. That is what `act.start()`
# writes just before it pokes the Manager, whose pass read it three times, 50 ms each
# (0.15 s of a 0.45 s start); a hand edit in place changes the text, not the attribute.
FRESH = 0.5  # seconds
SETTLE_TRIES = 5
WHOLE = "user.backstage.sha256"


# What was read, by file: a Production of a thousand Acts is read once a second by the
# Manager and by every viewer, and parsing the TOML is most of that. A file is parsed
# again when its inode, size, mtime or ctime moved, or while it is fresh.
_loaded: dict[tuple[type, str], tuple[tuple[int, int, int, int], Any]] = {}


def load(cls: type[S], path: str, parsed: Callable[[str], None] | None = None) -> S:
    """The spec `path` declares. `parsed(text)` is called when the file was read and
    found good (not when it came from what was read before)."""
    return _load(cls, path, parsed)[0]


def _load(cls: type[S], path: str, parsed: Callable[[str], None] | None = None) -> tuple[S, int]:
    """The spec, and the file's modification time (ns) as stat'ed before it was read:
    never newer than what the spec says (see DeclaredAct.mtime)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        _loaded.pop((cls, path), None)
        raise
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    cached = _loaded.get((cls, path))
    if cached is not None and cached[0] == stamp:
        return cached[1], st.st_mtime_ns
    text = _read_settled(path)
    data = tomlfile.loads(text, path)
    if not data:
        # never "all defaults": an empty production.toml would declare no Venue at all
        raise InvalidSetting(f"{path} is empty: {_EMPTY_HINT.get(cls, 'write its settings')}")
    spec = from_dict(cls, data, path)
    try:
        _on_this_host(spec)
    except InvalidSetting as exc:
        raise InvalidSetting(f"{path}: {exc}") from None
    if parsed is not None:
        parsed(text)
    if time.time() - st.st_mtime >= FRESH:
        _loaded[(cls, path)] = (stamp, spec)
    return spec, st.st_mtime_ns


def _on_this_host(spec: object) -> None:
    """What a spec names on the host must be there: a Venue's user (InvalidSetting)."""
    if isinstance(spec, VenueSpec) and spec.runs_as:
        account(spec.runs_as)


_EMPTY_HINT: dict[type, str] = {
    ProductionSpec: "write its settings back (the last good ones: run/production.last-good.toml)",
    VenueSpec: 'write its settings back: name = "VENUE" and python = "X.Y" at least',
    ActSpec: 'write its settings back: name = "NAME" and port = PORT at least',
}


def _read_settled(path: str) -> str:
    with open(path, "rb") as source:
        text = source.read()
        fresh = time.time() - os.fstat(source.fileno()).st_mtime < FRESH
        if fresh and _whole(source.fileno(), text):
            fresh = False
    for _ in range(SETTLE_TRIES if fresh else 0):
        time.sleep(0.05)
        with open(path, "rb") as source:
            again = source.read()
        if again == text:
            break
        text = again
    return text.decode("utf-8", errors="replace")


def _digest(text: bytes) -> bytes:
    return hashlib.sha256(text).hexdigest().encode()


def _whole(fd: int, text: bytes) -> bool:
    """`text`, read from `fd`, is what `dump` wrote there whole."""
    try:
        return os.getxattr(fd, WHOLE) == _digest(text)
    except OSError:
        return False


def dump(path: str, spec: Any, owner: tuple[int, int] | None = None) -> None:
    """Write `spec` to `path`, for its owner's eyes only (an env holds secrets, and the
    rest says where everything is); `owner` (uid, gid): a Venue user's, for an act.toml
    in their folder."""
    _on_this_host(spec)
    data = to_dict(spec)
    text = tomlfile.dumps(data)
    write_atomic(path, text, 0o600, owner, xattrs={WHOLE: _digest(text.encode())})
    # Written whole (renamed into place) and known: this process reads it back from
    # here, without waiting for it to settle, until it changes. What the file says is
    # `data` (the writer covers exactly what it writes): read from that, not parsed
    # again, a third of a dump's CPU (5,000 Acts declared: 1.2 s)
    st = os.stat(path)
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    cls = type(spec)
    _loaded[(cls, path)] = (stamp, from_dict(cls, _as_parsed(data), path))


def _as_parsed(value: Any) -> Any:
    """`value` as tomllib gives it back from what `tomlfile.dumps` wrote: lists for tuples."""
    if isinstance(value, dict):
        return {k: _as_parsed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_as_parsed(v) for v in value]
    return value


def production_spec(layout: Layout) -> ProductionSpec:
    """What production.toml declares: the defaults while there is none yet, InvalidSetting
    when it cannot be used (not TOML, a wrong value, empty, unreadable). Whoever writes
    it back reads it so: a change is never made on top of a file that was not read."""
    path = layout.spec_path
    try:
        return load(ProductionSpec, path, partial(_keep_good, layout))
    except FileNotFoundError:
        if os.path.exists(layout.last_good_spec):  # it was there: not a new Production
            raise InvalidSetting(
                f"{path} is gone: put it back (the last good one is {layout.last_good_spec})"
            ) from None
        return ProductionSpec()
    except OSError as exc:
        raise InvalidSetting(
            f"cannot read {path} ({exc.strerror}): make it a file Backstage can read"
        ) from None


def production_playing(layout: Layout) -> tuple[ProductionSpec, str]:
    """What plays, and "" or why production.toml is not what plays: while it cannot be
    used, the last good one plays on (a bad edit must not stop or move every Act); with
    no good one ever read, InvalidSetting."""
    try:
        return production_spec(layout), ""
    except InvalidSetting as exc:
        try:
            good = load(ProductionSpec, layout.last_good_spec)
        except (BackstageError, OSError):
            raise exc from None
        return good, f"{exc}; meanwhile the last good one plays"


def _keep_good(layout: Layout, text: str) -> None:
    """Keep a copy of a production.toml that was read good, when it differs from the
    copy: one read of a small file, only when the file was parsed again."""
    try:
        with open(layout.last_good_spec, encoding="utf-8", errors="replace") as kept:
            if kept.read() == text:
                return
    except OSError:
        pass
    with contextlib.suppress(OSError):  # a read-only home: the copy is a nicety
        write_atomic(layout.last_good_spec, text, 0o600)


def create_home(layout: Layout, first: Callable[[], ProductionSpec] | None = None) -> None:
    """Make the home folder on first use; safe to call again. `first` makes the settings
    of a new production.toml (the defaults without it)."""
    unsafe = unsafe_in_home(layout.home)
    if unsafe:
        raise InvalidSetting(
            f"the Production's folder {layout.home!r} holds {unsafe!r}, which cannot go into "
            "a uWSGI config: set BACKSTAGE_HOME to a plain path"
        )
    try:
        # the logs and run/ are the Production's alone: what its Acts said and printed,
        # its sockets and secrets
        for folder in (layout.log_dir, layout.run_dir):
            os.makedirs(folder, mode=0o700, exist_ok=True)
            if os.stat(folder).st_mode & 0o777 != 0o700:  # a read-only home stays usable
                os.chmod(folder, 0o700)
        if not os.path.lexists(layout.spec_path):
            production_spec(layout)  # one gone since it was read good is not made anew
            dump(layout.spec_path, first() if first else ProductionSpec())
    except OSError as exc:
        raise InvalidSetting(
            f"cannot create the Production at {layout.home} ({exc.strerror}): "
            "set BACKSTAGE_HOME to a folder you can write"
        ) from exc


@contextlib.contextmanager
def locked(path: str) -> Iterator[None]:
    """Hold an exclusive lock on `path` (made 0600 if missing) for the block; another
    process asking for it waits. The lock dies with its process."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def unless_locked(path: str) -> Iterator[bool]:
    """The lock on `path` held for the block, True, when nobody holds it (a missing file
    is held by nobody, and not made); False at once when another process holds it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        yield True
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def venue_spec(venue_path: str) -> VenueSpec:
    return load(VenueSpec, venue_spec_path(venue_path))


def act_spec(ref: ActRef) -> ActSpec:
    try:
        return load(ActSpec, ref.spec_path)
    except OSError as exc:
        if not os.path.lexists(ref.spec_path):
            raise NotFound(f"Act {ref.key} is gone (no {ref.spec_path})") from None
        raise InvalidSetting(_reason(exc, ref.spec_path)) from None


def act(ref: ActRef) -> DeclaredAct:
    """The one Act as `read` finds it among the others (its act.toml checked within its
    Venue, an unreadable Venue making it invalid), without reading the rest: what
    `status` says of it is what its own state says. NotFound when it is gone."""
    try:
        venue = venue_spec(ref.venue_path)
    except (BackstageError, OSError) as exc:
        return DeclaredAct(ref, None, _reason(exc, ref.venue_path))
    try:
        return DeclaredAct(ref, _checked(act_spec(ref), ref, venue))
    except NotFound:
        raise
    except BackstageError as exc:
        return DeclaredAct(ref, None, str(exc))


def act_names(venue_path: str) -> list[str]:
    """The Acts of a Venue: the folders of `acts/` that hold an `act.toml` (or a name
    there that is not a readable file: an Act that is invalid, not one that is gone)."""
    folder = acts_dir(venue_path)
    return [
        name for name in _folders(folder) if os.path.lexists(os.path.join(folder, name, "act.toml"))
    ]


def _folders(folder: str) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except FileNotFoundError:
        return []


@dataclass(frozen=True)
class DeclaredVenue:
    path: str
    spec: VenueSpec | None
    error: str = ""  # why `spec` is None


@dataclass(frozen=True)
class DeclaredAct:
    ref: ActRef
    spec: ActSpec | None
    error: str = ""  # why `spec` is None
    # The act.toml's modification time (ns) when `spec` was read: a judgment of the Act
    # (unplayables) is about this version of it, not about one written since
    mtime: int = 0


@dataclass(frozen=True)
class Declared:
    """Everything the files of one Production declare, read once."""

    production: ProductionSpec
    venues: tuple[DeclaredVenue, ...]
    acts: tuple[DeclaredAct, ...]
    problem: str = ""  # why production.toml is not what plays ("" when it is)

    def domains_of(self, venue: str) -> tuple[str, ...]:
        for found in self.venues:
            if found.spec is not None and found.spec.name == venue:
                return found.spec.domains
        return ()


def read(layout: Layout) -> Declared:
    production, problem = production_playing(layout)
    # One read at a time in a process: the Manager's pass, its dashboard's Snapshots and
    # its certificates' thread share what is known unchanged, and a read draining the
    # events while another marks a file known would lose the event of an edit between
    with _unchanged.lock:
        return _read(production, problem)


def _read(production: ProductionSpec, problem: str) -> Declared:
    watched = _unchanged.begin()
    venues, acts = [], []
    for path in production.venues:
        try:
            spec = venue_spec(path)
        except (BackstageError, OSError) as exc:
            reason = _reason(exc, path)
            venues.append(DeclaredVenue(path, None, reason))
            # Its Acts are invalid with it, not gone: they play on as they were, and
            # show why, rather than vanish from status and be withdrawn as unknown.
            name = _venue_name(path)
            acts += [DeclaredAct(ActRef(name, path, act), None, reason) for act in act_names(path)]
            continue
        venues.append(DeclaredVenue(path, spec))
        folder = acts_dir(path)
        watching = _unchanged.acts_folder(folder) if watched else False
        for name in _folders(folder):
            ref, spec_path = _ref(spec, path, name)
            try:
                act = _unchanged.known(folder, name, spec_path) if watching else None
                if act is None:
                    act = _unchanged.load(folder, name, spec_path) if watching else None
                act = act or _load(ActSpec, spec_path)
                acts.append(_declared_act(ref, spec_path, act, spec))
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
                # no act.toml: not an Act (one stat each, not two, as act_names); but
                # one that is a folder or a link to nothing is an Act gone invalid,
                # shown and played on as it was, not one that vanishes and is withdrawn
                if isinstance(exc, NotADirectoryError) or not os.path.lexists(ref.spec_path):
                    continue
                acts.append(DeclaredAct(ref, None, _reason(exc, ref.spec_path)))
            except (BackstageError, OSError) as exc:
                acts.append(DeclaredAct(ref, None, _reason(exc, ref.spec_path)))
    return Declared(production, tuple(venues), tuple(acts), problem)


class _Unchanged:
    """The act.toml files known unchanged since this process last read them, so that a
    read of five thousand Acts (a `top` feed's Snapshot every second) need not stat
    each one: their folders are watched (inotify.py), and a file is known unchanged
    from when it was read under a watch until an event names it.

    Only a plain file in a plain folder of `acts/` is trusted (each watched, the file
    for writes through another of its links), `acts/` itself checked by one stat a
    read (a Venue's folder replaced tells nothing to the acts/ it moved along). Watched
    from a process's second read on: a single `backstage status` would spend more on
    the watches than it saves; where the kernel gives no watch, the file is stat'ed.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()  # held by each read
        self._folders = inotify.Folders()
        self._files: set[str] = set()  # the Acts' folders whose act.toml is known
        self._acts: dict[str, tuple[int, int]] = {}  # each watched acts/ and its (dev, ino)
        self._reads = 0
        self._pid = os.getpid()

    def begin(self) -> bool:
        """Before a read: forget what changed since the last. False: not watching."""
        if self._pid != os.getpid():
            self.forked()
        self._reads += 1
        if self._reads < 2:
            return False
        changed = self._folders.changed()
        if changed is None:
            self._files.clear()
            self._acts.clear()
            return True
        for path in changed:
            # acts/NAME (the folder replaced) or acts/NAME/act.toml (the file changed)
            self._files.discard(path)
            if path.endswith("/act.toml"):
                self._files.discard(path[: -len("/act.toml")])
        return True

    def forked(self) -> None:
        """In a forked child: the watches and their events are the parent's, and what
        the parent knew unchanged is not known here (it would be trusted for ever); a
        lock another thread of the parent held would be held for ever."""
        self.lock = threading.Lock()
        self._files.clear()
        self._acts.clear()
        self._reads, self._pid = 0, os.getpid()

    def acts_folder(self, folder: str) -> bool:
        """Watch `folder` (a Venue's acts/) unless it is the one already watched; False
        when it cannot be (then each of its act.toml is read as without watching)."""
        try:
            before = os.stat(folder)
        except OSError:
            return False
        found = (before.st_dev, before.st_ino)
        if self._acts.get(folder) == found:
            return True
        # another folder there now, or a new one: what was known under it is not
        self._files = {path for path in self._files if path.rpartition("/")[0] != folder}
        self._acts.pop(folder, None)
        try:
            watched = self._folders.watch(folder) and os.stat(folder)
        except OSError:
            return False
        if not watched or (watched.st_dev, watched.st_ino) != found:
            return False
        self._acts[folder] = found
        return True

    def known(self, folder: str, name: str, spec_path: str) -> tuple[ActSpec, int] | None:
        """The Act's spec as last read and its mtime, if its act.toml did not change since."""
        if f"{folder}/{name}" not in self._files:
            return None
        cached = _loaded.get((ActSpec, spec_path))
        return None if cached is None else (cached[1], cached[0][2])

    def load(self, folder: str, name: str, spec_path: str) -> tuple[ActSpec, int]:
        """Read the act.toml (load), watching its folder first: known unchanged from
        then on, when it is a plain file that was kept (not one still settling)."""
        act_folder = f"{folder}/{name}"  # as the events name it
        file = f"{act_folder}/act.toml"
        watched = self._folders.watch(act_folder) and self._folders.watch(file, folder=False)
        spec, mtime = loaded = _load(ActSpec, spec_path)
        cached = _loaded.get((ActSpec, spec_path))
        if not watched or cached is None:
            return loaded
        try:
            folder_stat = os.lstat(act_folder)
            file_stat = os.lstat(file)
        except OSError:
            return loaded
        stamp = (file_stat.st_ino, file_stat.st_size, file_stat.st_mtime_ns, file_stat.st_ctime_ns)
        if (
            stat.S_ISDIR(folder_stat.st_mode)
            and stat.S_ISREG(file_stat.st_mode)
            and stamp == cached[0]
            and cached[1] is spec
        ):
            self._files.add(act_folder)
        return loaded


_unchanged = _Unchanged()
os.register_at_fork(after_in_child=_unchanged.forked)


# What the last reads made of each Act: a thousand Acts read once a second (the
# Manager's passes, every viewer's Snapshot) are a thousand of each, the same ones.
_refs: dict[tuple[str, str, str, str], tuple[ActRef, str]] = {}
_acts: dict[str, tuple[ActSpec, VenueSpec, DeclaredAct]] = {}  # by act.toml's path


def _ref(venue: VenueSpec, path: str, name: str) -> tuple[ActRef, str]:
    """The Act `name` of the Venue at `path`, and where its act.toml is."""
    key = (venue.name, path, name, venue.runs_as)
    found = _refs.get(key)
    if found is None:
        ref = ActRef(venue.name, path, name, venue.runs_as)
        found = _refs[key] = (ref, ref.spec_path)
    return found


def _declared_act(
    ref: ActRef, spec_path: str, loaded: tuple[ActSpec, int], venue: VenueSpec
) -> DeclaredAct:
    """The Act as declared, checked within its Venue; the same as before when neither
    its act.toml nor its venue.toml was read anew (the same venue.toml, the same ref)."""
    spec, mtime = loaded
    before = _acts.get(spec_path)
    if before is not None and before[0] is spec and before[1] is venue:
        if before[2].mtime == mtime:
            return before[2]
    found = DeclaredAct(ref, _checked(spec, ref, venue), mtime=mtime)
    _acts[spec_path] = (spec, venue, found)
    return found


def _venue_name(path: str) -> str:
    """The name of a Venue whose venue.toml cannot be used: what it still says, if it
    parses, else its folder's name (which `new_venue` gives it)."""
    try:
        name = tomlfile.load(venue_spec_path(path)).get("name")
    except (BackstageError, OSError):
        name = None
    return name if isinstance(name, str) and name else os.path.basename(path)


def _checked(spec: ActSpec, ref: ActRef, venue: VenueSpec) -> ActSpec:
    """What an act.toml may say only within its Production: its own name, and hosts
    inside its Venue's domains (a hand edit must not take another Venue's host)."""
    if spec.name != ref.name:
        raise InvalidSetting(
            f"{ref.spec_path}: name = {spec.name!r}, but the Act's folder is {ref.name!r}: "
            f'write name = "{ref.name}"'
        )
    for host in spec.hosts:
        if domain_of(host, venue.domains) is None:
            raise InvalidSetting(
                f"{ref.spec_path}: hosts: {host} is not a domain of Venue {venue.name}: "
                f"add it with `backstage venue domain add {venue.name} DOMAIN`, or remove it"
            )
    return spec


def _reason(exc: Exception, path: str) -> str:
    if isinstance(exc, FileNotFoundError) and os.path.islink(path):
        return (
            f"{path} is a link to {os.readlink(path)}, which is not there: "
            "make it the file itself again"
        )
    if isinstance(exc, IsADirectoryError):
        return f"{path} is a folder: make it a file again"
    if isinstance(exc, FileNotFoundError):
        return f"{path} is gone"
    if isinstance(exc, OSError):
        return f"cannot read {path}: {exc.strerror}"
    return str(exc)
