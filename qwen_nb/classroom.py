"""A class on one emulator: ``qwen-nb classroom init`` writes its config (a key and workspace per student) and handouts.

``init_classroom(students=30)`` writes three files into a folder, each readable by its owner
only (mode 0600), next to a ``.gitignore`` that keeps them out of version control:

* ``classroom.toml``: the emulator's config (``qwen-nb emulator --classroom classroom.toml``):
  one sub-workspace per student with its own key, grants (``manage_grants``: the student may
  change them) and budget, a default "teacher" workspace, and a ``[classroom]`` table holding the
  teacher token that the emulator's control endpoints, request log and usage then require;
* ``handout.csv`` and ``handout.html`` (printable, one card per student): each student's two
  ``.env`` lines, ``QWEN_NB_EMULATOR`` (the emulator's address on the local network) and
  ``QWEN_NB_EMULATOR_KEY`` (their key). With those, ``qwen_nb.connect()`` asks the emulator for
  that key's own workspace.

The keys are the point of the handouts, so they are written in full there, and only there: the
objects here show them masked, and ``qwen-nb check-notebooks`` reports them like any other key
if one ends up in a notebook. Keys of the emulator work on that emulator only.
"""

from __future__ import annotations

import csv
import html
import io
import os
import secrets
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qwen_nb._regions import get_region
from qwen_nb._secrets import mask_key
from qwen_nb.catalog import model_info
from qwen_nb.errors import InputError

#: the models each student's workspace is granted at first (they may change their grants)
DEFAULT_MODELS: tuple[str, ...] = ("qwen-plus", "qwen-flash", "qwen-vl-plus")
#: each student's budget, in the region's currency (estimated from the emulator's price table)
DEFAULT_BUDGET = 1.0
DEFAULT_PORT = 8765
MAX_STUDENTS = 500
CONFIG_NAME, CSV_NAME, HTML_NAME = "classroom.toml", "handout.csv", "handout.html"
WARNING = ("These are API keys of the class emulator: each works only on that emulator, but it is the "
           "student's own. Hand each student their own card; do not post, commit or paste them into notebooks.")


@dataclass(frozen=True)
class Student:
    """One student's workspace on the class emulator (the key is shown masked)."""

    name: str
    workspace: str
    region: str
    key: str = field(repr=False)
    models: tuple[str, ...] = DEFAULT_MODELS
    budget: float | None = DEFAULT_BUDGET

    @property
    def masked_key(self) -> str:
        """The key as it may be shown: ``sk-…1a2b``."""
        return mask_key(self.key)

    def env_lines(self, url: str) -> str:
        """The two ``.env`` lines of this student (the key in full: this is the handout's text)."""
        return f"QWEN_NB_EMULATOR={url}\nQWEN_NB_EMULATOR_KEY={self.key}\n"


@dataclass(frozen=True)
class ClassroomFiles:
    """What ``init_classroom`` wrote: the emulator config, the two handouts, and the class's address."""

    config: Path
    csv: Path
    html: Path
    url: str
    students: tuple[Student, ...] = field(repr=False)

    def __repr__(self) -> str:
        return (f"<ClassroomFiles {len(self.students)} students at {self.url}: {self.config.name}, "
                f"{self.csv.name}, {self.html.name} in {self.config.parent}>")


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def default_url(port: int = DEFAULT_PORT) -> str:
    """``http://<this machine's network address>:port`` (loopback when it has none)."""
    from qwen_nb.emulator.hosts import lan_address

    return f"http://{lan_address() or '127.0.0.1'}:{port}"


def _check(students: int, region: str, models: Sequence[str] | None, budget: float | None, url: str | None,
           name: str) -> tuple[str, tuple[str, ...] | None]:
    if isinstance(students, bool) or not isinstance(students, int) or not 1 <= students <= MAX_STUDENTS:
        raise InputError(f"students={students!r} must be a whole number from 1 to {MAX_STUDENTS}.",
                         fix="E.g. qwen-nb classroom init --students 30.")
    region_id = get_region(region).id
    grants = None if models is None else tuple(models)
    for m in grants or ():
        if model_info(m) is None:
            raise InputError(f"Unknown model {m!r} in models.",
                             fix="Use catalogue names such as qwen-plus, qwen-flash.")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget < 0):
        raise InputError(f"budget={budget!r} must be a non-negative amount (or None for no budget).")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        raise InputError(f"url={url!r} must be the emulator's address, e.g. http://192.168.1.20:8765.")
    if not isinstance(name, str) or not name.strip() or "\n" in name:
        raise InputError("name must be a one-line name for the class, e.g. \"Qwen 101\".")
    return region_id, grants


def make_classroom(students: int = 30, *, region: str = "ap-southeast-1",
                   models: Sequence[str] | None = DEFAULT_MODELS, budget: float | None = DEFAULT_BUDGET,
                   url: str | None = None, name: str = "class") -> tuple[str, tuple[Student, ...], str]:
    """The class's emulator config (TOML text), its students and its URL; nothing written.

    Each student gets a sub-workspace with a fresh key and workspace id, ``models`` granted
    (None: every model) and ``budget``; a default "teacher" workspace of the region may call every
    model (and change any student's grants). The ``[classroom]`` table holds a fresh teacher token.
    """
    from qwen_nb.emulator.config import new_token, parse_config

    region_id, grants = _check(students, region, models, budget, url, name)
    url = (url or default_url()).rstrip("/")
    width = max(2, len(str(students)))
    people = tuple(
        Student(f"student-{i:0{width}d}", "llm-" + secrets.token_hex(8), region_id, "sk-" + secrets.token_hex(16),
                grants or (), None if budget is None else float(budget))
        for i in range(1, students + 1))
    models_toml = '"all"' if grants is None else "[" + ", ".join(_toml_str(m) for m in grants) + "]"
    lines = [
        "# The emulator config of a class, written by `qwen-nb classroom init`.",
        "# It holds every student's API key and the teacher token: keep it private (mode 0600), out of",
        "# version control and out of notebooks. Serve it with:",
        "#   qwen-nb emulator --classroom classroom.toml --host 0.0.0.0",
        "",
        "[classroom]",
        f"name = {_toml_str(name.strip())}",
        f"teacher_token = {_toml_str(new_token())}",
        f"url = {_toml_str(url)}",
        "",
        "[emulator]",
        "rate_window = 60.0",
        "",
        "[[workspace]]",
        'name = "teacher"',
        f'id = "llm-{secrets.token_hex(8)}"',
        f"region = {_toml_str(region_id)}",
        "default = true",
        f'keys = ["sk-{secrets.token_hex(16)}"]',
        'models = "all"',
    ]
    for s in people:
        lines += ["", "[[workspace]]", f"name = {_toml_str(s.name)}", f"id = {_toml_str(s.workspace)}",
                  f"region = {_toml_str(region_id)}", f"keys = [{_toml_str(s.key)}]", f"models = {models_toml}",
                  "manage_grants = true"]
        if s.budget is not None:
            lines.append(f"budget = {s.budget!r}")
    text = "\n".join(lines) + "\n"
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    parse_config(tomllib.loads(text), "the new class config")  # what the emulator will read
    return text, people, url


def handout_csv(students: Sequence[Student], url: str) -> str:
    """The handout as CSV: one row per student with their ``.env`` lines."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["student", "workspace", "region", "QWEN_NB_EMULATOR", "QWEN_NB_EMULATOR_KEY", "env"])
    for s in students:
        w.writerow([s.name, s.workspace, s.region, url, s.key, s.env_lines(url).strip()])
    return out.getvalue()


def handout_html(students: Sequence[Student], url: str, name: str = "class") -> str:
    """The printable handout: a warning, then one card per student (cut along the dashed lines)."""
    esc = html.escape
    cards = "\n".join(
        f'<section class="card"><h2>{esc(s.name)}</h2>'
        f"<p>Put these two lines into the <code>.env</code> file next to your notebooks (or your "
        f"environment), then run <code>import qwen_nb as q; q.connect()</code>.</p>"
        f"<pre>{esc(s.env_lines(url))}</pre>"
        f"<p class='small'>Workspace {esc(s.workspace)} · region {esc(s.region)} · models "
        f"{esc(', '.join(s.models) or 'all')} · budget {esc('none' if s.budget is None else f'{s.budget:g}')}. "
        f"This key works only on the class emulator at {esc(url)}; keep it to yourself.</p></section>"
        for s in students)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(name)}: emulator keys</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
.warning {{ border: 2px solid #b00; padding: .6em; color: #800; }}
.card {{ border-top: 2px dashed #888; padding: .8em 0; page-break-inside: avoid; }}
pre {{ font-size: 1.1em; background: #f4f4f4; padding: .5em; }}
.small {{ font-size: .85em; color: #444; }}
@media print {{ .warning {{ page-break-after: always; }} .card {{ page-break-after: always; }} }}
</style></head><body>
<h1>{esc(name)}: keys for the class emulator</h1>
<p class="warning"><strong>Private.</strong> {esc(WARNING)}</p>
{cards}
</body></html>
"""


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600), atomically: a failure leaves any old file."""
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
        os.chmod(path, 0o600)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def init_classroom(students: int = 30, out: str | os.PathLike[str] = "classroom", *,
                   region: str = "ap-southeast-1", models: Sequence[str] | None = DEFAULT_MODELS,
                   budget: float | None = DEFAULT_BUDGET, url: str | None = None, name: str = "class",
                   force: bool = False) -> ClassroomFiles:
    """Write a class's emulator config and handouts into the folder ``out`` (mode 0600 each).

    ``url``: the address students reach the emulator at (default: this machine's network
    address, port 8765). Existing files are kept unless ``force``: a class's keys are not
    replaced by accident.
    """
    text, people, root = make_classroom(students, region=region, models=models, budget=budget, url=url, name=name)
    folder = Path(out)
    targets = [folder / CONFIG_NAME, folder / CSV_NAME, folder / HTML_NAME]
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise InputError(f"{existing[0]} exists already: its keys would be replaced.",
                         fix="Pick another --out folder, or pass --force to write a new class.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        ignore = folder / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# a class's keys: never commit these files\n*\n", encoding="utf-8")
        _write_private(targets[0], text)
        _write_private(targets[1], handout_csv(people, root))
        _write_private(targets[2], handout_html(people, root, name))
    except OSError as exc:
        raise InputError(f"Cannot write the class's files into {str(folder)!r}: {exc.strerror or exc}.",
                         fix="Pick a folder you can write to (--out).") from None
    return ClassroomFiles(targets[0], targets[1], targets[2], root, people)


def load_students(path: str | os.PathLike[str]) -> tuple[tuple[Student, ...], str | None]:
    """The students of a class config (its sub-workspaces with ``manage_grants``) and its URL."""
    from qwen_nb.emulator.config import load_config

    cfg = load_config(path)
    if cfg.classroom is None:
        raise InputError(f"{os.fspath(path)!r} has no [classroom] table: it is not a class's config.",
                         fix="Write one with `qwen-nb classroom init`.")
    people = tuple(Student(ws.name, ws.id, ws.region, ws.keys[0], ws.models or (), ws.flags.budget)
                   for ws in cfg.workspaces if ws.manage_grants and not ws.default)
    return people, cfg.classroom.url


def _parser():
    import argparse

    p = argparse.ArgumentParser(prog="qwen-nb classroom",
                                description="A class on one emulator: a key and workspace per student, and handouts.")
    sub = p.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="write the class's emulator config and handouts (files of mode 0600)")
    init.add_argument("--students", type=int, default=30, help="how many students (default 30)")
    init.add_argument("--region", default="ap-southeast-1", help="the workspaces' region (default ap-southeast-1)")
    init.add_argument("--out", default="classroom", help="folder to write into (default ./classroom)")
    init.add_argument("--url", default=None,
                      help="the address students reach the emulator at (default: this machine's network address "
                      f"and port {DEFAULT_PORT})")
    init.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port for the default --url ({DEFAULT_PORT})")
    init.add_argument("--models", default=",".join(DEFAULT_MODELS),
                      help=f"models each student is granted at first, comma-separated, or 'all' "
                      f"(default {','.join(DEFAULT_MODELS)})")
    init.add_argument("--budget", type=float, default=DEFAULT_BUDGET,
                      help=f"each student's budget in the region's currency; 0 stops calls at once "
                      f"(default {DEFAULT_BUDGET:g})")
    init.add_argument("--name", default="class", help="the class's name (shown on the handouts)")
    init.add_argument("--force", action="store_true", help="replace the files of an earlier class in --out")
    hand = sub.add_parser("handout", help="write the handouts again, e.g. for another address (--url)")
    hand.add_argument("config", help="the class's classroom.toml")
    hand.add_argument("--url", default=None, help="the address students reach the emulator at")
    return p


def cli_main(argv: list[str]) -> int:
    """``qwen-nb classroom init|handout``."""
    from qwen_nb.errors import QwenNbError

    args = _parser().parse_args(argv)
    try:
        if args.command == "init":
            models = None if args.models.strip() == "all" else [m.strip() for m in args.models.split(",") if m.strip()]
            url = args.url or default_url(args.port)
            files = init_classroom(args.students, args.out, region=args.region, models=models, budget=args.budget,
                                   url=url, name=args.name, force=args.force)
        else:
            people, known = load_students(args.config)
            url = (args.url or known or default_url()).rstrip("/")
            folder = Path(args.config).parent
            _write_private(folder / CSV_NAME, handout_csv(people, url))
            _write_private(folder / HTML_NAME, handout_html(people, url))
            files = ClassroomFiles(Path(args.config), folder / CSV_NAME, folder / HTML_NAME, url, people)
    except QwenNbError as exc:
        print(f"qwen-nb classroom: {exc}", file=sys.stderr)
        return 2
    print(f"Wrote {files.config}, {files.csv} and {files.html} (mode 0600) for {len(files.students)} students.")
    print(f"WARNING: {WARNING}")
    print(f"Students reach the emulator at {files.url} (the handouts' QWEN_NB_EMULATOR).")
    from urllib.parse import urlsplit

    port = urlsplit(files.url).port or DEFAULT_PORT
    print(f"Start it:  qwen-nb emulator --classroom {files.config} --host 0.0.0.0 --port {port}")
    print(f"Teacher:   qwen-nb emulator usage --classroom {files.config}   (and: reset)")
    return 0


__all__ = ["DEFAULT_BUDGET", "DEFAULT_MODELS", "ClassroomFiles", "Student", "cli_main", "handout_csv",
           "handout_html", "init_classroom", "load_students", "make_classroom"]
