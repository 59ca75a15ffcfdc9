"""The router's answer for a host nobody plays: a plain 404, at once.

Loaded by the router vassal's own worker (`wsgi-file`), which the router falls
back to for any Host header no playing Act is subscribed under.
"""


def application(environ, start_response):  # type: ignore[no-untyped-def]
    host = environ.get("HTTP_HOST", "")
    body = f"404 Not Found: no Gig plays at {host!r} here\n".encode("ascii", "replace")
    start_response(
        "404 Not Found",
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
    )
    return [body]
