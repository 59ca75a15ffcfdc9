"""The router's TLS contexts: TLS 1.2 unless TLS 1.3 is asked for, forward-secret AEAD
suites, and the options line read before any context is made (uWSGI makes each one as
it reads its `https` or `sni` line, with the `ssl-option`s read so far)."""

from __future__ import annotations

import re
import ssl

from backstage.model.layout import Layout
from backstage.render.stageset import TLS12_CIPHERS, StageSet


def _router(tmp_path, **tls) -> str:
    layout = Layout(str(tmp_path))
    return StageSet().router(
        layout, "127.0.0.1:8000", "", "", https="127.0.0.1:8443", certs=("a.example",), **tls
    )


def _lines(text: str, option: str) -> list[tuple[int, str]]:
    return [
        (n, line.split(" = ", 1)[1])
        for n, line in enumerate(text.splitlines())
        if line.startswith(f"{option} = ")
    ]


def test_tls_12_only_by_default_read_before_every_context(tmp_path):
    text = _router(tmp_path)
    [(at, value)] = _lines(text, "ssl-option")
    options = int(value)
    assert options & ssl.OP_NO_TLSv1_3 and options & ssl.OP_NO_TLSv1_1
    assert not options & ssl.OP_NO_TLSv1_2
    contexts = _lines(text, "https") + _lines(text, "sni")
    assert contexts and all(n > at for n, _ in contexts)
    # each context names the suites after its certificate and key
    assert all(v.endswith(f".key,{TLS12_CIPHERS}") for _, v in contexts)


def test_tls_13_beside_when_asked(tmp_path):
    [(_, value)] = _lines(_router(tmp_path, tls13=True), "ssl-option")
    assert not int(value) & ssl.OP_NO_TLSv1_3 and int(value) & ssl.OP_NO_TLSv1_1


def test_no_tls_no_options(tmp_path):
    text = StageSet().router(Layout(str(tmp_path)), "127.0.0.1:8000", "", "")
    assert not re.search(r"^(ssl-option|https|sni) = ", text, re.MULTILINE)


def test_the_suites_are_forward_secret_and_aead_only():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers(TLS12_CIPHERS)  # OpenSSL knows each name
    names = [c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert len(names) == len(TLS12_CIPHERS.split(":"))
    assert all(n.startswith("ECDHE-") and ("GCM" in n or "POLY1305" in n) for n in names)
