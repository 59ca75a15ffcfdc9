"""The Stage Set: what the Stage lends every Act, starting with its vassal config.

Rendering takes plain data (the Layout, an ActRef, a spec) and returns text; pushing
or writing it is control's job. Templates come from the package, or from
`<home>/templates/` when a Production overrides one. A template sees `production`
(`home`), `prefix`, `venue` (`name`, `path`, `uwsgi`, and `user`, `uid`, `gid` when its
Acts run as a user), `act` (`name`, `key`, `path`, and its `socket_path`, `stats_path`,
`fifo_path`, `gigs_config_path`, `log_path`), `spec` (the ActSpec), `env`, `max_rss`
(MiB, the Act's or the Production's; 0 = none) and `plugins` (what a modular uwsgi must
load, else "") and `listen` (the listen queue of its sockets); the router's sees
`plugins`, `listen`, `log_max`, `drain` and `router` (`address`, `subscription_path`,
`stats_path`, `socket_path`, `booked_path`, `log_path`).
"""

from __future__ import annotations

import hashlib
import json
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass

import jinja2

from emperor.heldwire import HELD_ENV, held_fd_urls

from ..model.account import Account
from ..model.checks import cron_fields, split_cron
from ..model.gig import FALLBACK_KEY, SLEEPER_WEIGHT, keys_for, split_address
from ..model.layout import ActRef, Layout, venue_run_dir
from ..model.spec import ActSpec
from .factory import FACTORY_APP
from .ini import ini_value, kv_value, path_value
from .shim import SHIM_MODULE, static_map

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The router's own worker: a WSGI file that answers 404 for a host nobody plays.
NOGIG_APP = os.path.join(PACKAGE, "scripts", "nogig.py")
# Loaded by each Act's master: sets the Act's env from its JSON file in run/.
ENV_LOADER = os.path.join(PACKAGE, "scripts", "vassalenv.py")
# Loaded by each worker of a Django Act before its app: reads the URLconf at load.
WARMUP = os.path.join(PACKAGE, "scripts", "warmup.py")
# Loaded by a Django Act's master: Django's own modules, imported once for every worker.
PRELOAD = os.path.join(PACKAGE, "scripts", "djangopreload.py")
# Workers at rest from which the master preloads Django: each lazy worker still writes
# to most of those pages as it loads the project, so with one worker the master's copy
# is paid twice (51 MiB PSS against 38 without); from two on it pays (68 against 70).
# With one worker it could at best break even (the worker would allocate what it shares),
# so it is the same on every Python: 44.6-45.7 MiB against 36.5-37.3 on 3.11-3.13, whose
# immortal objects (3.12 on) spare only reference counts of what Python itself made.
PRELOAD_FROM = 2


def environment(override_dir: str | None = None) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if override_dir and os.path.isdir(override_dir):
        loaders.append(jinja2.FileSystemLoader(override_dir))
    loaders.append(jinja2.PackageLoader("backstage", "templates"))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["ini"] = ini_value
    env.filters["kv"] = kv_value
    env.filters["path"] = path_value
    return env


@dataclass(frozen=True)
class ProductionView:
    home: str


@dataclass(frozen=True)
class VenueView:
    name: str
    path: str
    uwsgi: str = ""  # its own uwsgi, where the Stage's embeds another Python; else ""
    user: str = ""  # the user its Acts run as; "" = as the Emperor
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class ActView:
    name: str
    key: str
    path: str
    socket_path: str
    stats_path: str
    fifo_path: str
    gigs_config_path: str
    log_path: str
    static_root: str
    env_path: str


@dataclass(frozen=True)
class ProjectView:
    """What the vassal serves and how: for a scaffold its own folder, for an adopted
    project the project's folder, its WSGI callable, and the Act's generated settings."""

    chdir: str
    wsgi: str
    settings: str  # DJANGO_SETTINGS_MODULE; "" for another WSGI app
    pythonpath: tuple[str, ...]
    bytecode: tuple[tuple[str, str], ...]  # its env for bytecode: `bytecode_env`
    static: tuple[tuple[str, str], ...]  # static-map and offload-threads
    workers: tuple[tuple[str, str], ...]  # (name, script)
    crons: tuple[tuple[str, str], ...]  # (cron2 fields, script)
    options: tuple[tuple[str, str], ...]  # the Act's own [uwsgi] table, one line each
    touch_path: str  # touched on a reload: the workers restart with the web workers


def scripts_dir(ref: ActRef) -> str:
    """Where an Act's worker and cron commands are written, one script each: for an Act
    whose Venue has a user, in a folder that user cannot write, as the Production
    Manager writes them as root."""
    if ref.user:
        return os.path.join(venue_run_dir(ref.venue_path), f"{ref.venue}.{ref.name}.bin")
    return os.path.join(ref.path, "bin")


def worker_script(ref: ActRef, name: str) -> str:
    return os.path.join(scripts_dir(ref), f"worker-{name}")


def cron_script(ref: ActRef, name: str) -> str:
    return os.path.join(scripts_dir(ref), f"cron-{name}")


def reload_touch(ref: ActRef) -> str:
    return os.path.join(scripts_dir(ref), "reloaded")


def pycache_prefix(ref: ActRef) -> str:
    return os.path.join(ref.path, "pycache")


def bytecode_env(ref: ActRef, spec: ActSpec) -> tuple[tuple[str, str], ...]:
    """Where the Act's vassal keeps bytecode. A scaffold's: in each version, which never
    changes. An adopted folder's: in the Act's folder (PYTHONPYCACHEPREFIX), never the
    project's, by each version's own path (its workers import through its real path). A
    git Act's: nowhere, as its clone is served in place until a release serves (and the
    vassal's config stays the same when one does): a pyc is valid for a source of the
    same size and mtime in whole seconds, so two saves of one size within a second
    would load the first."""
    if not spec.adopted:
        return ()
    if spec.source == ref.clone:
        return (("PYTHONDONTWRITEBYTECODE", "1"),)
    return (("PYTHONPYCACHEPREFIX", pycache_prefix(ref)),)


def uses_shim(spec: ActSpec) -> bool:
    """An adopted Django project runs with the Act's generated settings module."""
    return spec.adopted and bool(spec.django_settings) and spec.booked_hosts


def served_files(ref: ActRef, spec: ActSpec) -> tuple[tuple[str, str], ...]:
    """The options that serve STATIC_URL and MEDIA_URL from their folders, each once. A
    STATIC_ROOT inside the project is collected into each version: served through
    `current`, the live one's, as the code is."""
    options: list[tuple[str, str]] = []
    if spec.static_url:
        root = spec.static_root
        if spec.current and spec.source and _within(root, spec.source):
            root = ref.current + root[len(spec.source) :]
        options += static_map(spec.static_url, root)
    if spec.media_url:
        options += static_map(spec.media_url, spec.media_root, "MEDIA")
    return tuple(dict.fromkeys(options))


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder + os.sep)


def _moved(path: str, root: str, served: str) -> str:
    """A folder of the project's Python path, inside the folder served."""
    if path == root or path.startswith(root + os.sep):
        return served + path[len(root) :]
    return path


def project_view(ref: ActRef, spec: ActSpec) -> ProjectView:
    shim = uses_shim(spec)
    root = spec.source or ref.path
    served = ref.current if spec.current else root
    moved = tuple(_moved(path, root, served) for path in spec.pythonpath)
    # uWSGI puts each pythonpath first in turn: `current` last is looked in first, ahead
    # of the folder the master started in (a release a chain reload has left)
    # a factory is served through the module generated at the root of each version, and
    # of the Act's folder for an Act served from no version: looked in last
    factory = spec.wsgi_app.factory
    own = (ref.path,) if shim or factory else ()
    pythonpath = own + moved + ((served,) if spec.current or factory else ())
    options = []
    for key, value in spec.uwsgi.items():
        for item in value if isinstance(value, tuple) else (value,):
            text = ("true" if item else "false") if isinstance(item, bool) else str(item)
            options.append((key, text))
    crons = []
    for name, entry in spec.cron.items():
        schedule, _ = split_cron(name, entry)
        fields = ",".join(f"{k}={v}" for k, v in cron_fields(name, schedule)) or "minute=-1"
        crons.append((f"{fields},unique=1", cron_script(ref, name)))
    return ProjectView(
        chdir=served,
        wsgi=FACTORY_APP if factory else spec.wsgi_target,
        settings=SHIM_MODULE if shim else spec.django_settings,
        pythonpath=tuple(dict.fromkeys(pythonpath)),
        bytecode=bytecode_env(ref, spec),
        static=served_files(ref, spec),
        workers=tuple((name, worker_script(ref, name)) for name in spec.workers),
        crons=tuple(crons),
        options=tuple(options),
        touch_path=reload_touch(ref),
    )


@dataclass(frozen=True)
class RouterView:
    address: str
    subscription_path: str
    stats_path: str
    socket_path: str
    booked_path: str
    log_path: str


def env_json(env: dict[str, str]) -> str:
    """The Act's env file: a JSON object, ASCII, in a stable order."""
    return json.dumps(env, sort_keys=True, ensure_ascii=True)


def env_digest(env: dict[str, str]) -> str:
    """Part of the vassal config of an Act with workers or cron, so that a changed env
    restarts it like any changed declaration, though the values themselves stay out of
    the config."""
    return hashlib.sha256(env_json(env).encode()).hexdigest()[:16]


def act_view(layout: Layout, ref: ActRef) -> ActView:
    return ActView(
        name=ref.name,
        key=ref.key,
        path=ref.path,
        socket_path=layout.act_socket(ref),
        stats_path=layout.act_stats(ref),
        fifo_path=layout.act_fifo(ref),
        gigs_config_path=layout.act_gigs(ref),
        log_path=layout.act_log(ref),
        static_root=ref.static_root,
        env_path=layout.act_env(ref),
    )


def router_view(layout: Layout, address: str) -> RouterView:
    return RouterView(
        address=address,
        subscription_path=layout.router_subscriptions,
        stats_path=layout.router_stats,
        socket_path=layout.router_socket,
        booked_path=layout.router_booked,
        log_path=layout.router_log,
    )


# The plugins a modular uwsgi (Debian's uwsgi-core: nothing built in) loads for what the
# templates use: Python and `metricinc` for an Act; the HTTP router and Python for the router
ACT_PLUGINS = "python3,router_metrics"
ROUTER_PLUGINS = "python3,corerouter,http"


# The router's TLS 1.2 suites: forward secret and authenticated encryption only, the
# server's order first (Mozilla's "intermediate" list, less DHE, for which uWSGI loads no
# parameters). OpenSSL's default list adds CBC and static-RSA suites.
TLS12_CIPHERS = ":".join(
    f"ECDHE-{auth}-{suite}"
    for suite in ("AES128-GCM-SHA256", "AES256-GCM-SHA384", "CHACHA20-POLY1305")
    for auth in ("ECDSA", "RSA")
)


def tls_options(tls13: bool) -> int:
    """The OpenSSL options (`ssl-option`) of every TLS context of the router: no TLS 1.1
    (uWSGI already turns off SSLv3 and TLS 1.0) and, unless `tls13`, no TLS 1.3.

    Why TLS 1.2 by default: uWSGI 2.0 pins each context's key exchange to P-256
    (SSL_CTX_set_tmp_ecdh), so a TLS 1.3 client whose key share is X25519 (wrk, Chrome)
    is sent a HelloRetryRequest, a second round trip, on every connection, resumed ones
    included; and a resumed TLS 1.3 session pays a P-256 key exchange where a TLS 1.2
    ticket pays none. Measured with wrk, a connection per request: 0.56-0.62 ms of the
    router's CPU per request over TLS 1.3, 0.13-0.16 over TLS 1.2."""
    options = ssl.OP_NO_TLSv1_1 | (0 if tls13 else ssl.OP_NO_TLSv1_3)
    return int(options)


CONFIGS_KEPT = 10_000  # two for each of thousands of Acts; then begun again
# The listen queue of every socket of an Act and of the router: connections waiting while
# every worker is busy. uWSGI's default, 100, is soon full under load (wrk -c 128 at one
# Act): the router's connect to the Act then fails and the client's connection is closed
# unanswered, though the Act would have served it a moment later.
LISTEN = 1024


class StageSet:
    """`modular`: the uwsgi that runs the vassals has its plugins in files (the system
    Emperor's), so each config names the ones it needs; a monolithic build needs no line.
    `listen`: the listen queue of the sockets (the kernel's ceiling may be lower)."""

    def __init__(
        self,
        template_dir: str | None = None,
        modular: bool = False,
        listen: int = LISTEN,
        holds: bool = False,
    ) -> None:
        self._env = environment(template_dir)
        self.modular = modular
        self.listen = listen
        # the Stage runs its vassals through the wrapper that hands them held sockets
        self.holds = holds
        self._kept: dict[tuple[object, ...], tuple[ActSpec, str]] = {}

    def render(self, template: str, **context: object) -> str:
        return self._env.get_template(template).render(**context)

    def _act_config(
        self,
        template: str,
        spec: ActSpec,
        inputs: tuple[object, ...],
        context: Callable[[], dict[str, object]],
    ) -> str:
        """An Act's config as `template` renders it: the text of the last call with the
        same template, the same other inputs and a spec of the same value. The Production
        Manager renders every Act's configs each second; comparing the spec (a frozen
        dataclass: field by field, and at once when it is the very object the declared
        files keep until act.toml changes) costs far less than a render. Jinja hands back a
        new template when a user's override changes."""
        compiled = self._env.get_template(template)
        key = (compiled, *inputs)
        kept = self._kept.get(key)
        if kept is not None and kept[0] == spec:
            return kept[1]
        text = compiled.render(**context())
        if len(self._kept) >= CONFIGS_KEPT:
            self._kept.clear()  # keys of Acts gone, or of settings since changed
        self._kept[key] = (spec, text)
        return text

    def _act_context(
        self,
        layout: Layout,
        ref: ActRef,
        spec: ActSpec,
        venue_uwsgi: str = "",
        account: Account | None = None,
        node: str = "",
    ) -> dict[str, object]:
        user = (account.name, account.uid, account.gid) if account else ("", 0, 0)
        return {
            "production": ProductionView(layout.home),
            "prefix": layout.prefix,
            "venue": VenueView(ref.venue, ref.venue_path, venue_uwsgi, *user),
            "act": act_view(layout, ref),
            "spec": spec,
            "project": project_view(ref, spec),
            "plugins": ACT_PLUGINS if self.modular else "",
            "listen": self.listen,
            "node": node if self.holds else "",
            **self._held(3 if node else 2),
        }

    def _held(self, count: int = 2) -> dict[str, object]:
        """What a config names its held sockets by (an HTTP port, then a uwsgi socket,
        then the one for routers on other hosts)."""
        return {"held": held_fd_urls(count) if self.holds else [], "held_env": HELD_ENV}

    def vassal(
        self,
        layout: Layout,
        ref: ActRef,
        spec: ActSpec,
        venue_uwsgi: str = "",
        max_rss: int = 0,
        account: Account | None = None,
        redirect: str | None = None,
        challenges: str = "",
        hsts: tuple[str, ...] = (),
        marks: str = "",
        node: str = "",
    ) -> str:
        """`venue_uwsgi`: the Venue's own uwsgi binary, which the vassal re-execs into, or
        "" for a Venue on the Python of the Stage's uwsgi. `max_rss` is the Production's
        default, which the Act's own overrides. `account`: the Venue's user, whom the
        vassal drops to (the caller looked it up: rendering reads nothing). `redirect`:
        with a TLS listener that redirects, what follows the host in its URLs ("" on
        443, else ":PORT"); None: no redirect. `challenges`: the folder of ACME's HTTP-01
        answers, served at /.well-known/acme-challenge/ ("" none). `hsts`: the Venue
        domains whose hosts send Strict-Transport-Security over HTTPS. `marks`: the folder
        of redirect marks the vassal can read (default: the home's). `node`: HOST:PORT of
        its uwsgi socket for routers on other hosts, when the Stage holds its sockets
        (its third held one; else the subscriptions' ini binds it)."""
        return self._act_config(
            "vassal.ini.j2",
            spec,
            (
                "vassal",
                layout.home,
                ref,
                venue_uwsgi,
                max_rss,
                account,
                redirect,
                challenges,
                hsts,
                marks,
                node,
            ),
            lambda: dict(
                redirect=None if redirect is None else (marks or layout.https_marks, redirect),
                challenges=challenges,
                hsts=[d.replace(".", "\\.") for d in hsts],
                **self._act_context(layout, ref, spec, venue_uwsgi, account, node),
                max_rss=spec.max_rss or max_rss,
                env=sorted(spec.env.items()),  # for templates of old; the default reads env_path
                env_loader=ENV_LOADER,
                warmup=WARMUP,
                preload=PRELOAD if spec.processes >= PRELOAD_FROM else "",
                # the master's own forks (workers' daemons, cron) have the env it loaded at
                # start: a changed env restarts it; without them a chain reload applies it
                env_digest=env_digest(spec.env) if spec.workers or spec.cron else "",
            ),
        )

    def gigs(
        self,
        layout: Layout,
        ref: ActRef,
        spec: ActSpec,
        router_address: str,
        sign: str | Callable[[str], str],
        remote: tuple[str, ...] = (),
        node: str = "",
    ) -> str:
        """The Act's subscriptions to the router, the ini its vassal config includes.
        `sign` is the subscribe2 `sign=` value (or makes it from a host), "" when
        announces go unsigned; `remote` the subscription servers of routers on other
        hosts, announced to from the uwsgi socket at `node` (HOST:PORT) too. An Act of a
        Venue with a user announces nothing itself: the router's subscription socket is
        the Production's alone, and the Production Manager announces its hosts."""
        port = split_address(router_address)[1]
        signs = sign if callable(sign) else (lambda host: sign)
        gigs = tuple(
            (host, key, layout.withheld(ref, host), signs(host))
            for host in (() if ref.user else spec.hosts)
            for key in keys_for(host, port)
        )
        return self._act_config(
            "gigs.ini.j2",
            spec,
            ("gigs", layout.home, ref, router_address, gigs, remote, node),
            lambda: {
                **self._act_context(layout, ref, spec),
                "router": router_view(layout, router_address),
                "gigs": gigs,
                "remote": remote if node else (),
                "node": node,
                # held, its vassal config names it (the Stage holds every Act's sockets)
                "held_node": self.holds,
                "pending": layout.pending(ref),
                "hosts_path": layout.act_hosts(ref),
                "weight": SLEEPER_WEIGHT if spec.idle else 0,
            },
        )

    def keeper(
        self,
        layout: Layout,
        python: str,
        owner: tuple[int, int] | None = None,
        log_max: int = 0,
    ) -> str:
        """The vassal that keeps the keeper: `python` runs `-m backstage keep`, as `owner`
        (uid, gid), the Production's, when an Emperor run as root must drop to it.
        `log_max`: bytes past which keeper.log is rotated; 0 = never."""
        return self.render(
            "keeper.ini.j2",
            production=ProductionView(layout.home),
            prefix=layout.prefix,
            python=python,
            log=layout.keeper_log,
            owner=owner,
            log_max=log_max,
        )

    def router(
        self,
        layout: Layout,
        address: str,
        sign: str,
        sign_check: str,
        subscription_server: str = "",
        log_max: int = 0,
        drain: bool = False,
        https: str = "",
        tls_stamp: str = "",
        certs: tuple[str, ...] = (),
        tls13: bool = False,
    ) -> str:
        """`log_max`: bytes past which router.log is rotated; 0 = never. `drain`: the
        uwsgi drops log lines by regular expression (`log-drain`). `https`: the address
        of the TLS listener ("" none); `tls_stamp`: what changes when a certificate the
        router has loaded is replaced (it reads each host's pair once); `tls13`: TLS 1.3
        is offered beside TLS 1.2."""
        held = self._held()
        if https and self.holds:
            held["held"] = held_fd_urls(3)  # the HTTP port, the socket, the TLS port
        return self.render(
            "router.ini.j2",
            production=ProductionView(layout.home),
            prefix=layout.prefix,
            plugins=ROUTER_PLUGINS if self.modular else "",
            listen=self.listen,
            log_max=log_max,
            drain=drain,
            router=router_view(layout, address),
            fallback_key=FALLBACK_KEY,
            nogig_app=NOGIG_APP,
            sign=sign,
            sign_check=sign_check,
            subscription_server=subscription_server,
            https=https,
            tls_stamp=tls_stamp,
            challenges=layout.challenges,
            default_cert=layout.default_cert,
            default_key=layout.default_cert_key,
            certs=[(h, layout.cert_path(h), layout.cert_key_path(h)) for h in certs],
            ssl_option=tls_options(tls13),
            ciphers=TLS12_CIPHERS,
            **held,
        )
