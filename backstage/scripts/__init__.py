"""Files that uWSGI, or a Venue's own Python, loads by path: the router's 404/503 worker
(`nogig`), an Act's env loader (`vassalenv`), Django's warm-up and preload (`warmup`,
`djangopreload`), the pre-flight's check and the release steps (`appcheck`) and the warm
pre-flight's process (`checker`). Standard library only; nothing in Backstage imports them."""
