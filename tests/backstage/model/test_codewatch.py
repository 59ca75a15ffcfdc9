from __future__ import annotations

from backstage.model.codewatch import Debounce, WatchRules

RULES = WatchRules(
    root="/p",
    extra=("config/*.yaml",),
    ignore=("docs", "app/generated_*.py"),
    skipped_roots=("/p/staticfiles",),
)


def test_code_is_python_templates_and_what_watch_paths_adds():
    assert RULES.is_code("/p/app/views.py")
    assert RULES.is_code("/p/app/templates/app/index.html")
    assert RULES.is_code("/p/config/site.yaml")
    assert RULES.is_code("/lib/shared/util.py")  # its pythonpath, outside the folder
    assert not RULES.is_code("/p/README.md")


def test_never_code():
    for path in (
        "/p/.git/HEAD",
        "/p/.git/hooks/x.py",
        "/p/app/__pycache__/views.cpython-311.pyc",
        "/p/media/upload.py",
        "/p/static/admin/x.py",
        "/p/staticfiles/app.py",
        "/p/db.sqlite3",
        "/p/app/.views.py.swp",
        "/p/app/views.py~",
        "/p/docs/conf.py",
        "/p/app/generated_models.py",
        "/p/releases/1-abc/app/views.py",
    ):
        assert not RULES.is_code(path), path


def test_a_burst_is_one_reload_due_after_quiet_or_the_longest_wait():
    debounce = Debounce(quiet=0.1, longest=1.0)
    assert debounce.due() is None
    debounce.saved(10.0)
    assert debounce.due() == 10.1
    for i in range(1, 20):
        debounce.saved(10.0 + i * 0.05)
    assert debounce.due() == 11.0  # never quiet: the longest wait
    assert debounce.take() == 20
    assert debounce.due() is None
