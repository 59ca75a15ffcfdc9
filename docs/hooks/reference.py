"""MkDocs hook: the reference pages, generated at build time from the code itself, so that
they cannot drift from it. The command's pages come from the click commands
(backstage/ui), one page per module of commands; the declared files' keys come from the
specs (backstage/model/spec.py): each field's name, type and default, and the comments
written beside it; the `[uwsgi]` options an Act may set from the table that allows them.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import json
import os
import re
import sys
import textwrap
import tokenize
from typing import Any

import click

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if ROOT not in sys.path:  # the checkout's code, whatever is installed
    sys.path.insert(0, ROOT)

CLI_DIR = "reference/cli"
FILES_PAGE = "reference/files.md"
NAV_TITLE = "The command"  # the nav entry whose pages this hook fills in


# ---- the command ------------------------------------------------------------------


def commands() -> list[tuple[str, click.Command]]:
    """Every visible command and group under `backstage`, with its full name, in the order
    a reader meets them (the root first)."""
    from backstage.ui.cli import cli

    found: list[tuple[str, click.Command]] = []

    def walk(command: click.Command, path: str) -> None:
        found.append((path, command))
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                if not sub.hidden:
                    walk(sub, f"{path} {name}")

    walk(cli, "backstage")
    return found


def _page_of(path: str, command: click.Command) -> str:
    """The page a command is on: the module that defines it (act_commands -> act)."""
    if path == "backstage":
        return "index"
    top = path.split()[1]
    from backstage.ui.cli import cli

    module = (cli.commands[top].callback or command.callback).__module__  # type: ignore[union-attr]
    return module.rsplit(".", 1)[-1].removesuffix("_commands")


def cli_pages() -> dict[str, str]:
    """Page path -> Markdown, for every page of the command's reference."""
    import backstage.ui.cli as root

    by_page: dict[str, list[tuple[str, click.Command]]] = {}
    for path, command in commands():
        by_page.setdefault(_page_of(path, command), []).append((path, command))
    pages: dict[str, str] = {}
    titles: dict[str, str] = {}
    for name, entries in by_page.items():
        if name == "index":
            continue
        module = sys.modules[entries[0][1].callback.__module__]  # type: ignore[union-attr]
        summary = inspect.cleandoc(module.__doc__ or "").split("\n\n")[0].replace("\n", " ")
        title = _title(name)
        titles[name] = title
        body = [f"# {title}\n", f"{_escape(summary)}\n"]
        body += [_command_md(path, command) for path, command in entries]
        pages[f"{CLI_DIR}/{name}.md"] = "\n".join(body)
    index = [
        "# The command\n",
        "Generated from the commands themselves: each command's `--help` says the same.\n",
        _command_md("backstage", root.cli, heading=False),
        "## Every command\n",
        "| command | what it does |",
        "| --- | --- |",
    ]
    for path, command in commands()[1:]:
        page = _page_of(path, command)
        anchor = _anchor(path)
        index.append(f"| [`{path}`]({page}.md#{anchor}) | {_escape(_first_line(command))} |")
    pages[f"{CLI_DIR}/index.md"] = "\n".join(index) + "\n"
    return dict(sorted(pages.items(), key=lambda item: _order(item[0])))


PAGE_ORDER = ("index", "production", "venue", "act", "gig", "tls", "release")


def _order(page: str) -> tuple[int, str]:
    name = page.rsplit("/", 1)[-1].removesuffix(".md")
    return (PAGE_ORDER.index(name) if name in PAGE_ORDER else len(PAGE_ORDER), name)


def _title(name: str) -> str:
    return {
        "production": "The Production",
        "venue": "Venues",
        "act": "Acts",
        "gig": "Gigs",
        "tls": "Certificates",
        "release": "Development and releases",
    }.get(name, name.replace("_", " ").capitalize())


def _anchor(path: str) -> str:
    return path.replace(" ", "-")


def _first_line(command: click.Command) -> str:
    return inspect.cleandoc(command.help or "").split("\n\n")[0].replace("\n", " ")


def _command_md(path: str, command: click.Command, heading: bool = True) -> str:
    ctx = click.Context(command, info_name=path)
    lines = [f"## {path} {{#{_anchor(path)}}}\n"] if heading else []
    lines.append(f"```text\n{command.get_usage(ctx).strip()}\n```\n")
    for paragraph in inspect.cleandoc(command.help or "").split("\n\n"):
        if paragraph.startswith("\b\n"):  # click's verbatim block: the example
            text = paragraph[2:]
            head, _, rest = text.partition("\n")
            if head.strip().endswith(":"):
                lines.append(f"{_escape(head.strip())}\n")
                text = inspect.cleandoc(rest)
            lines.append(f"```bash\n{text}\n```\n")
        else:
            lines.append(_escape(paragraph.replace("\n", " ")) + "\n")
    rows = []
    help_option = command.get_help_option(ctx)
    for param in command.get_params(ctx):
        if isinstance(param, click.Argument) or param is help_option:
            continue  # the usage line names the arguments; every command takes --help
        record = param.get_help_record(ctx)
        if record:
            rows.append(f"| `{record[0]}` | {_escape(record[1])} |")
    if rows:
        lines += ["| option | what it does |", "| --- | --- |", *rows, ""]
    if isinstance(command, click.Group) and heading:
        subs = [f"`{name}`" for name, sub in command.commands.items() if not sub.hidden]
        lines.append(f"Its commands: {', '.join(subs)}.\n")
    return "\n".join(lines)


CODE_SPAN = re.compile(r"(`[^`]*`)")


def _escape(text: str) -> str:
    """Markdown for plain help text: <, > and | are shown, not taken for HTML or a cell's
    end (inside a code span only the | needs it)."""
    parts = []
    for part in CODE_SPAN.split(text):
        if part.startswith("`") and part.endswith("`") and len(part) > 1:
            parts.append(part.replace("|", "\\|"))
        else:
            parts.append(
                part.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                .replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")
            )  # fmt: skip
    return "".join(parts)


# ---- the declared files -------------------------------------------------------------


def field_comments(cls: type) -> dict[str, str]:
    """A dataclass field -> the comments written with it in its class: the lines right
    above it and the one at the end of its line."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    found: dict[str, str] = {}
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    for node in body.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above = []
        number = node.lineno - 1
        while number >= 1 and lines[number - 1].strip().startswith("#"):
            above.insert(0, comments.get(number, ""))
            number -= 1
        end = comments.get(node.end_lineno or node.lineno, "")
        text = " ".join(part for part in [*above, end] if part and "fmt:" not in part)
        found[node.target.id] = text
    return found


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{}" if not value else json.dumps(value)
    return repr(value)


def _kind(annotation: str) -> str:
    annotation = annotation.replace(" ", "")
    if annotation.startswith("dict["):
        return "table"
    if annotation.startswith("tuple[int,int]"):
        return "two integers"
    if annotation.startswith("tuple["):
        return "array of strings"
    return {
        "int": "integer",
        "bool": "boolean",
        "str": "string",
        "bool|None": "boolean, or unset",
    }.get(annotation, annotation)


def spec_table(cls: type, skip: tuple[str, ...] = ()) -> str:
    comments = field_comments(cls)
    rows = ["| key | type | default | what it is |", "| --- | --- | --- | --- |"]
    for spec_field in dataclasses.fields(cls):
        if spec_field.name in skip:
            continue
        if spec_field.default is not dataclasses.MISSING:
            default = _toml(spec_field.default) if spec_field.default is not None else "unset"
        elif spec_field.default_factory is not dataclasses.MISSING:
            default = _toml(spec_field.default_factory())
        else:
            default = "required"
        rows.append(
            f"| `{spec_field.name}` | {_kind(str(spec_field.type))} | `{default}` | "
            f"{_escape(comments.get(spec_field.name, ''))} |"
        )
    return "\n".join(rows) + "\n"


def files_page() -> str:
    from backstage.model import spec
    from backstage.model.options import ALLOWED_OPTIONS

    options = ["| option | value |", "| --- | --- |"]
    kinds = {"int": "a number", "bool": "true or false", "text": "one line of text"}
    options += [f"| `{name}` | {kinds.get(kind, kind)} |" for name, kind in ALLOWED_OPTIONS.items()]
    return "\n".join(
        [
            "# The declared files\n",
            "What should run is declared in three kinds of TOML file. This page is generated "
            "from the classes that read them (`backstage/model/spec.py`), so it lists every "
            "key there is. A key that is not here is refused, naming the file and the key; "
            "an empty file is an error, never all defaults. Keys still at their default are "
            "not written back into a file Backstage rewrites.\n",
            "## production.toml\n",
            "In `$BACKSTAGE_HOME` (default `~/.backstage`): the Production as a whole.\n",
            spec_table(spec.ProductionSpec),
            f"The `[acme]` table takes {', '.join(f'`{k}`' for k in spec.ACME_KEYS)}; "
            f"`directory` defaults to `{spec.LETS_ENCRYPT}`.\n",
            "## venue.toml\n",
            "In each Venue's folder, beside `bin/` and `lib/`.\n",
            spec_table(spec.VenueSpec),
            "## act.toml\n",
            "In `VENUE/acts/NAME/`, 0600 (it holds the Act's environment).\n",
            spec_table(spec.ActSpec, skip=spec.ActSpec.NOT_KEYS),
            'Each `[cron]` entry is `"M H DOM MON DOW command"`, each field `*`, `*/N` or a '
            "number. Each `[workers]` entry is one command on one line, run beside the web "
            "workers with the Act's environment, reloaded and stopped with it.\n",
            "## The [uwsgi] options an Act may set\n",
            "An Act's `[uwsgi]` table is added to its vassal config. uWSGI reads that config "
            "as root, so only these options are taken (values are never expanded: `$(`, "
            "`@(`, `%(` are refused); any other is refused in one line naming it. See "
            "Security (the Venue's user) says why.\n",
            "\n".join(options) + "\n",
        ]
    )


# ---- every error message --------------------------------------------------------------

ERRORS_PAGE = "reference/errors.md"
PLACEHOLDER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _placeholder(node: ast.expr) -> str:
    """What a value in a message stands for, named as the code names it: `self.ref.key`
    is KEY, `spec.port` is PORT, anything more involved is ..."""
    if isinstance(node, ast.Attribute):
        name = node.attr
    elif isinstance(node, ast.Name):
        name = node.id
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
        return _placeholder(node.args[0])  # repr(x), str(x), len(x)...
    else:
        return "..."
    return name.strip("_").upper() or "..."


def _message(node: ast.expr) -> str | None:
    """The text of a message as the code writes it, with its values as placeholders."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                parts.append(_placeholder(value.value))
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _message(node.left), _message(node.right)
        if left is not None and right is not None:
            return left + right
    return None


def error_messages() -> dict[str, list[tuple[str, str]]]:
    """Each error class of backstage/errors.py -> (message, module) for every `raise` of
    it in backstage/ whose message is written out there."""
    import backstage.errors as errors

    names = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.BackstageError)
    }
    found: dict[str, list[tuple[str, str]]] = {name: [] for name in names}
    package = os.path.join(ROOT, "backstage")
    for folder, _dirs, filenames in os.walk(package):
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            path = os.path.join(folder, filename)
            with open(path, encoding="utf-8") as source:
                tree = ast.parse(source.read())
            module = os.path.relpath(path, ROOT)
            for node in ast.walk(tree):
                if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
                    continue
                func = node.exc.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name in names and node.exc.args:
                    text = _message(node.exc.args[0])
                    if text and text.strip():
                        found[name].append((" ".join(text.split()), module))
    return {name: sorted(set(found[name])) for name in sorted(found)}


def errors_page() -> str:
    import backstage.errors as errors

    lines = [
        "# Every error message\n",
        "Generated from the code at build time: every error Backstage raises on purpose, "
        "by its class in `backstage/errors.py`, with each message as the code writes it. "
        "A word in capitals stands for a value (`PORT`, `KEY`: the Act's `VENUE/NAME`); "
        "`...` for one the code works out. The command prints the message as one line, "
        "`backstage: MESSAGE`, and exits 1; in Python it is the exception's text. "
        "[Troubleshooting](../troubleshooting.md) says what the usual ones mean.\n",
    ]
    for name, messages in error_messages().items():
        cls = getattr(errors, name)
        bases = [
            b.__name__ for b in cls.__bases__ if b.__name__ not in ("BackstageError", "Exception")
        ]
        also = f" (also a `{'`, `'.join(bases)}`)" if bases else ""
        doc = inspect.cleandoc(cls.__doc__ or "").replace("\n", " ")
        lines.append(f"## {name} {{#{name.lower()}}}\n")
        lines.append(f"{_escape(doc)}{also}\n")
        if not messages:
            lines.append("Its messages are made where it is raised, from other errors.\n")
            continue
        lines += ["| message | where |", "| --- | --- |"]
        lines += [f"| {_escape(text)} | `{module}` |" for text, module in messages]
        lines.append("")
    return "\n".join(lines)


def generated() -> dict[str, str]:
    """Every generated page: path under docs/ -> Markdown."""
    return {**cli_pages(), FILES_PAGE: files_page(), ERRORS_PAGE: errors_page()}


# ---- the hooks ----------------------------------------------------------------------


def on_config(config: Any) -> Any:
    """Fill the command's section of the nav with its generated pages."""
    pages = [path for path in cli_pages()]

    def fill(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, dict):
                for title, value in item.items():
                    if title == NAV_TITLE:
                        item[title] = [
                            {
                                "Overview"
                                if p.endswith("index.md")
                                else _title(p.rsplit("/", 1)[-1].removesuffix(".md")): p
                            }
                            for p in pages
                        ]
                    elif isinstance(value, list):
                        fill(value)

    fill(config["nav"] or [])
    return config


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for path, text in generated().items():
        files.append(File.generated(config, path, content=text))
    return files
