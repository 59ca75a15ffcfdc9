"""A demo Production that serves and shows itself.

    python examples/demo.py [--once] [--keep]

Builds a Venue with three Acts, each answering with its own page and booked at a
host of the Venue's domain (served through the Production's router), sends them a
few requests, serves the live dashboard, and shows the Production's status from
uWSGI's stats every two seconds until ^C; then takes everything down (unless
--keep). The Production lives in /tmp/backstage-demo (set BACKSTAGE_HOME to put it
elsewhere).
"""

from __future__ import annotations

import argparse
import os
import socket
import time
import urllib.request

HOME = os.environ.setdefault("BACKSTAGE_HOME", "/tmp/backstage-demo/production")
ROOT = os.path.dirname(HOME)

from backstage import Production, Venue  # noqa: E402
from backstage.errors import NotFound  # noqa: E402
from backstage.shortcuts import new_venue  # noqa: E402
from backstage.ui.cli import cli  # noqa: E402

DOMAIN = "demo.test"
ACTS = {"kittens": "Pictures of kittens", "cupcakes": "Cupcake recipes", "jazz": "Friday jazz"}

PAGE = """
from django.http import HttpResponse
from django.urls import path


def home(request):
    return HttpResponse("<h1>{title}</h1><p>played by Backstage</p>")


urlpatterns = [path("", home)]
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def venue_of(production: Production) -> Venue:
    try:
        return production.venue("Demo")
    except NotFound:
        os.makedirs(ROOT, exist_ok=True)
        print("building Venue Demo (a virtualenv with Django)...")
        # as root: a user of its own, or root with a warning where that user could not
        # read the Stage's Python
        return new_venue("Demo", ROOT, production)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true", help="show the status once and stop")
    parser.add_argument("--keep", action="store_true", help="leave the Production running")
    options = parser.parse_args()

    production = Production(HOME)
    if not production.spec.dashboard:
        production.declare(dashboard=f"127.0.0.1:{free_port()}")
    venue = venue_of(production)
    if DOMAIN not in venue.domains:
        venue.add_domain(DOMAIN)
    for name, title in ACTS.items():
        try:
            act = venue.act(name)
        except NotFound:
            act = venue.new_act(name, processes=2, start=False)
            with open(os.path.join(act.path, name, "urls.py"), "w") as urls:
                urls.write(PAGE.format(title=title))
        act.start()
        host = f"{name}.{DOMAIN}"
        if host not in act.hosts:
            act.book(host)
        url = f"http://127.0.0.1:{act.port}/"
        for _ in range(5):
            urllib.request.urlopen(url).read()
        router = f"http://{production.spec.router}/"
        page = urllib.request.urlopen(urllib.request.Request(router, headers={"Host": host}))
        print(f"{name:10} {url}  {host} via {router}  {page.read().decode()[:30]}")
    print(f"\nthe dashboard: http://{production.spec.dashboard}/")
    try:
        while True:
            print()
            cli.main(["--home", HOME, "status"], standalone_mode=False)
            if options.once:
                break
            time.sleep(2)
    except KeyboardInterrupt:
        pass
    finally:
        if not options.keep:
            production.down()
            print("\nthe Production is down; `python examples/demo.py` plays it again")


if __name__ == "__main__":
    main()
