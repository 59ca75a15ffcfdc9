from __future__ import annotations

from backstage.ui.devlog import dev_line

REQUEST = (
    "[pid: 4242|app: 0|req: 3/7] 127.0.0.1 () {34 vars in 411 bytes} "
    "[Mon Nov 23 13:10:01 2026] GET /hello => generated 3 bytes in 2 msecs "
    "(HTTP/1.1 200) 2 headers in 80 bytes (1 switches on core 0)"
)


def test_requests_read_as_runserver_prints_them():
    assert dev_line(REQUEST) == '[Mon Nov 23 13:10:01 2026] "GET /hello HTTP/1.1" 200 3 (2 ms)'


def test_backstage_lines_and_the_apps_own_lines_pass_chatter_does_not():
    line = "[backstage] Mon Nov 23 13:10:01 2026 reloaded for 1 save (app/urls.py) in 0.80 s"
    assert dev_line(line) == "Mon Nov 23 13:10:01 2026 reloaded for 1 save (app/urls.py) in 0.80 s"
    assert dev_line("Traceback (most recent call last):") == "Traceback (most recent call last):"
    assert dev_line("spawned uWSGI worker 1 (pid: 12, cores: 1)") is None
    assert dev_line("WSGI app 0 (mountpoint='') ready in 1 seconds") is None
    assert dev_line("") is None
    # the response metrics' routing rules and counters, printed at each start
    rule = "[rule: 0] subject: ${uwsgi[status]};2 func: startswith action: metricinc:responses.2xx"
    assert dev_line(rule) is None
    assert dev_line("added custom metric: responses.2xx") is None
