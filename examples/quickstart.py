"""The original Getting Started, as a script.

    python examples/quickstart.py [FOLDER]

Builds MyVenue in FOLDER (default: a new temporary folder), launches MyAct,
stops and starts it, then takes the whole Production down again.
"""

import os
import sys
import tempfile
import urllib.request

folder = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="bsq", dir="/tmp")
os.environ.setdefault("BACKSTAGE_HOME", os.path.join(folder, "production"))

from backstage.shortcuts import new_act, new_venue  # noqa: E402

venue = new_venue("MyVenue", folder)  # a virtualenv with Django at FOLDER/MyVenue
act = new_act(venue, "MyAct")  # a Django project at FOLDER/MyVenue/acts/MyAct, launched at once
port = act.port
print(
    f"MyAct serves http://127.0.0.1:{port}/ ->",
    urllib.request.urlopen(f"http://127.0.0.1:{port}/").status,
)
act.stop()
print("stopped:", act.state)
act.start()
print("started again on the same port:", act.port == port, act.state)
venue.production.down()
