"""Find (and scrub) Model Studio API keys saved in Jupyter notebooks.

A key typed into a cell, printed by a cell, shown in an error traceback, kept in a
widget's saved state or stored in metadata ends up in the ``.ipynb`` file, and from
there in version control. :func:`scan_notebook` walks every string of a notebook:

* cell sources, attachments and cell metadata;
* outputs: stream text, every mime type of ``display_data`` / ``execute_result``
  (binary ones such as ``image/png`` are base64-decoded and searched too), error
  names, values and tracebacks;
* notebook metadata, including saved widget state
  (``metadata.widgets["application/vnd.jupyter.widget-state+json"].state``).

It looks for two things: strings shaped like a key (``sk-`` followed by a long run of
letters and digits, see :data:`KEY_SEARCH`) and the exact values of the keys configured
in the environment or ``.env`` (``DASHSCOPE_API_KEY`` and every ``QWEN_NB_<NAME>_API_KEY``,
whatever their shape). The emulator's public demo keys are not reported (``--strict`` /
``allow_demo_keys=False`` reports them too). Findings name the place and show the key
masked (``sk-…1a2b``), never in full. :func:`scrub_notebook` replaces every key by its masked form.

Cassettes (``NAME.cassettes/`` folders of recorded calls beside notebooks, see
``qwen_nb.recorder``) are scanned the same way, file by file (:func:`scan_cassette`): a
recording redacts keys, but a key typed into a prompt or a hand-edited file would be
committed too.

``qwen-nb check-notebooks PATH...`` is the command-line front (exit 0: clean, 1: keys
found, 2: usage error or a file that is not a readable notebook); ``--fix`` scrubs files
in place.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import copy
import functools
import json
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwen_nb._secrets import mask_key
from qwen_nb.errors import InputError
from qwen_nb.facts import KEY_SEARCH, KEY_VAR

#: Key-shaped strings are found with :data:`qwen_nb.facts.KEY_SEARCH` (``sk-`` then at least 16 key
#: characters, also right after ``_``). Candidates are then filtered, which makes the scan tighter
#: than ``KEY_SEARCH`` alone: the text after ``sk-`` must hold a run of 16+ letters and digits with a
#: digit in it (so hyphenated words such as ``sk-learn-contrib-lightning`` are not reported), and
#: ``sk-`` must not be glued to a preceding letter or digit (``task-…``, ``risk-…``) unless that is the
#: end of an ANSI colour code (``\x1b[0;31m``, as in tracebacks) or of an escaped ``\n`` / ``\t``.
#: Masked keys (``sk-…1a2b``) never match: ``…`` is not a key character.
_GLUE_OK = re.compile(r"(?:\x1b\[[0-9;]*m|\\[nrt])$")
_GLUE_OK_B = re.compile(_GLUE_OK.pattern.encode())
_RUN = re.compile(r"[A-Za-z0-9]{16,}")
#: configured values shorter than this are ignored (they would match ordinary text)
MIN_SECRET_LENGTH = 8

_BINARY_PREFIXES = ("image/", "audio/", "video/", "application/pdf", "application/octet-stream", "font/")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MAX_DECODE = 64 * 1024 * 1024


def _looks_like_key(candidate: str) -> bool:
    """A run of 16+ letters/digits holding a digit: real keys yes, ``sk-learn-…`` words no."""
    return any(any(c.isdigit() for c in run) for run in _RUN.findall(candidate[3:]))


def _free_start(s: str | bytes, start: int) -> bool:
    """Is the candidate at ``start`` not glued to a preceding word (ANSI codes and \\n allowed)?"""
    if start == 0:
        return True
    before = s[start - 1 : start]
    if isinstance(s, bytes):
        if not before.isalnum() or s[start - 1] >= 0x80:
            return True
        return bool(_GLUE_OK_B.search(s[max(0, start - 16) : start]))
    if not before.isalnum():
        return True
    return bool(_GLUE_OK.search(s[max(0, start - 16) : start]))


@dataclass(frozen=True)
class Finding:
    """One key found in a notebook: where it is and the key masked (never the key)."""

    path: str
    #: index of the cell in the notebook (``None`` for notebook-level metadata)
    cell: int | None
    #: place inside the cell or notebook, e.g. ``outputs[0].data[text/plain]``
    where: str
    #: the key as it may be shown, e.g. ``sk-…1a2b``
    masked: str
    #: why it was flagged: ``"key pattern"`` or the variable it matches, e.g. ``"DASHSCOPE_API_KEY"``
    reason: str = "key pattern"

    @property
    def location(self) -> str:
        """``path:cell 3:outputs[0].data[text/plain]`` (``path:notebook:metadata…`` outside cells)."""
        scope = "notebook" if self.cell is None else f"cell {self.cell}"
        return f"{self.path}:{scope}:{self.where}"

    def __str__(self) -> str:
        why = "" if self.reason == "key pattern" else f" (value of {self.reason})"
        return f"{self.location}: API key {self.masked}{why}"


class NotebookReadError(InputError):
    """A file that cannot be read as a Jupyter notebook."""


# -- which secrets to look for ------------------------------------------------------------


def configured_secrets(
    env: Mapping[str, str] | None = None,
    dotenv_path: str | os.PathLike | None = None,
    *,
    use_dotenv: bool = True,
) -> dict[str, str]:
    """Key values configured in the environment and ``.env``: ``{value: variable name}``.

    Reads ``DASHSCOPE_API_KEY`` and every ``QWEN_NB_<NAME>_API_KEY`` as raw text (so values
    that are not ``sk-`` shaped count too); quotes and surrounding whitespace are stripped
    and values shorter than :data:`MIN_SECRET_LENGTH` characters are ignored.
    """
    from qwen_nb._settings import read_dotenv as _read_dotenv
    from qwen_nb._settings import settings

    merged: dict[str, str] = {}
    if use_dotenv:
        try:
            merged.update(_read_dotenv(dotenv_path))
        except Exception as exc:  # a broken .env must not stop a scan of the notebooks
            warnings.warn(f"could not read the .env file: {type(exc).__name__}", stacklevel=2)
    conf = settings(env=env, use_dotenv=False, use_config=False)
    merged.update({name: conf.lookup(name).value or "" for name in conf.names()})
    out: dict[str, str] = {}
    for var in sorted(merged):
        if not KEY_VAR.match(var):
            continue
        value = (merged[var] or "").strip().strip("'\"").strip()
        if len(value) >= MIN_SECRET_LENGTH:
            out.setdefault(value, var)
    return out


class _Matcher:
    """Finds and replaces keys in str and bytes: the key pattern plus exact secret values."""

    def __init__(self, secrets: Mapping[str, str], allowed: Iterable[str] = ()) -> None:
        self.secrets = dict(secrets)
        #: key-shaped strings not to report (the emulator's public demo keys)
        self.allowed = frozenset(allowed) - set(self.secrets)
        parts = [re.escape(s) for s in sorted(self.secrets, key=len, reverse=True)]
        alternation = "|".join(parts + [KEY_SEARCH.pattern])
        self.text = re.compile(alternation)
        self.bytes = re.compile(alternation.encode("utf-8"))
        self._bsecrets = {s.encode("utf-8"): v for s, v in self.secrets.items()}

    def _accept(self, m: re.Match[str], s: str) -> str | None:
        """The reason to flag match ``m`` of ``s``, or None (a pattern match that is not a key)."""
        value = m.group()
        if value in self.secrets:
            return self.secrets[value]
        if value in self.allowed:
            return None
        return "key pattern" if _looks_like_key(value) and _free_start(s, m.start()) else None

    def find(self, s: str) -> Iterator[tuple[str, str]]:
        """(key, reason) for every key in ``s``."""
        if "sk-" not in s and not self.secrets:
            return
        for m in self.text.finditer(s):
            reason = self._accept(m, s)
            if reason:
                yield m.group(), reason

    def find_bytes(self, b: bytes) -> Iterator[tuple[str, str]]:
        """(key, reason) for every key in decoded binary data."""
        for m in self.bytes.finditer(b):
            raw = m.group()
            if raw in self._bsecrets:
                yield raw.decode("utf-8"), self._bsecrets[raw]
            else:
                text = raw.decode("ascii", "replace")
                if text not in self.allowed and _looks_like_key(text) and _free_start(b, m.start()):
                    yield text, "key pattern"

    def replace(self, s: str) -> tuple[str, int]:
        """``s`` with each key replaced by its masked form, and the number replaced."""
        count = 0

        def sub(m: re.Match[str]) -> str:
            nonlocal count
            if self._accept(m, s) is None:
                return m.group()
            count += 1
            return mask_key(m.group())

        return self.text.sub(sub, s), count


# -- walking a notebook -----------------------------------------------------------------


def _is_binary_mime(mime: str) -> bool:
    mime = mime.lower()
    return mime.startswith(_BINARY_PREFIXES) and not mime.startswith("image/svg")


def _decode_b64(value: Any) -> bytes | None:
    if isinstance(value, list):
        value = "".join(v for v in value if isinstance(v, str))
    if not isinstance(value, str) or len(value) > _MAX_DECODE:
        return None
    try:
        return base64.b64decode("".join(value.split()), validate=False)
    except (binascii.Error, ValueError):
        return None


def _step(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    key = str(key)
    if _IDENT.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key}]"


def _mime_container(path: str) -> bool:
    """Is the dict at ``path`` a mime bundle (output ``data`` or one attachment)?"""
    return path.endswith(".data") or path == "data" or path.startswith("attachments[")


def _walk(node: Any, path: str) -> Iterator[tuple[str, Any, bool]]:
    """Yield (path, value, is_binary) for every string and every dict key below ``node``."""
    if isinstance(node, str):
        yield path, node, False
    elif isinstance(node, Mapping):
        bundle = _mime_container(path)
        for key, value in node.items():
            sub = _step(path, key)
            if isinstance(key, str):
                yield f"{sub}(name)", key, False
            if bundle and isinstance(key, str) and _is_binary_mime(key):
                yield sub, value, True
            else:
                yield from _walk(value, sub)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, _step(path, i))


def _cells(nb: Mapping[str, Any]) -> Iterator[tuple[int, str, Any]]:
    """(cell index, path prefix, cell) for v4 ``cells`` and v3 ``worksheets[].cells``."""
    if isinstance(nb.get("cells"), list):
        for i, cell in enumerate(nb["cells"]):
            yield i, "", cell
    elif isinstance(nb.get("worksheets"), list):
        i = 0
        for ws in nb["worksheets"]:
            for cell in ws.get("cells", []) if isinstance(ws, Mapping) else []:
                yield i, "", cell
                i += 1


def _scan(nb: Mapping[str, Any], label: str, matcher: _Matcher) -> list[Finding]:
    findings: list[Finding] = []

    def check(cell: int | None, items: Iterable[tuple[str, Any, bool]]) -> None:
        for where, value, binary in items:
            if binary:
                data = _decode_b64(value)
                hits = matcher.find_bytes(data) if data else iter(())
                where = f"{where}(base64)"
            else:
                hits = matcher.find(value)
            for key, reason in hits:
                # the place itself may hold a key (a dict key, an attachment name): mask it too
                findings.append(Finding(label, cell, matcher.replace(where)[0], mask_key(key), reason))

    check(None, _walk(nb.get("metadata", {}), "metadata"))
    for index, prefix, cell in _cells(nb):
        check(index, _walk(cell, prefix))
    return findings


# -- reading / writing --------------------------------------------------------------------


def read_notebook(path: str | os.PathLike) -> Any:
    """Read a ``.ipynb`` without converting its nbformat version.

    Raises :class:`NotebookReadError` naming the file and the problem (unreadable, not
    UTF-8, not JSON, JSON that is not a notebook, unsupported nbformat version).
    """
    import nbformat
    from nbformat.reader import reads

    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise NotebookReadError(f"{p}: cannot read the file ({exc.strerror or exc}).") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotebookReadError(f"{p}: not UTF-8 text (bad byte at offset {exc.start}).") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookReadError(
            f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).",
            fix="Open it in a text editor and repair it, or restore it from version control.",
        ) from None
    major = data.get("nbformat") if isinstance(data, dict) else None
    if not isinstance(major, int) or not ("cells" in data or "worksheets" in data):
        raise NotebookReadError(
            f"{p}: valid JSON but not a Jupyter notebook (no 'nbformat' and 'cells' fields)."
        )
    try:
        return reads(text)
    except (nbformat.ValidationError, nbformat.NBFormatError, AttributeError, TypeError, KeyError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NotebookReadError(f"{p}: not a readable notebook (nbformat {major}): {msg}") from None


def _validation_error(nb: Any) -> str | None:
    import nbformat

    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        return str(exc).splitlines()[0]
    return None


def write_notebook(nb: Any, path: str | os.PathLike) -> None:
    """Write ``nb`` to ``path`` in its own nbformat version, atomically, keeping the file mode."""
    import nbformat

    p = Path(path)
    text = nbformat.writes(nb, version=nbformat.NO_CONVERT)
    if not text.endswith("\n"):
        text += "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        try:
            os.chmod(tmp, p.stat().st_mode & 0o7777)
        except OSError:
            pass
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# -- public API -------------------------------------------------------------------------


def _load(path_or_nb: Any) -> tuple[Any, str]:
    if isinstance(path_or_nb, (str, os.PathLike)):
        return read_notebook(path_or_nb), str(path_or_nb)
    if isinstance(path_or_nb, Mapping):
        return path_or_nb, "<notebook>"
    raise InputError(
        f"Expected a notebook path or a notebook dict, got {type(path_or_nb).__name__}.",
        fix="Pass the path of an .ipynb file, or a notebook read with nbformat.read().",
    )


def demo_keys() -> frozenset[str]:
    """The public demo keys of the emulator's built-in workspaces (not secrets; not reported)."""
    try:
        from qwen_nb.emulator.config import demo_keys as keys

        return frozenset(keys())
    except Exception:  # the emulator config is optional for a scan
        return frozenset()


def _matcher(extra_secrets: Iterable[str], use_env: bool, allow_demo_keys: bool = True) -> _Matcher:
    if isinstance(extra_secrets, str):
        extra_secrets = (extra_secrets,)
    secrets = configured_secrets() if use_env else {}
    for s in extra_secrets:
        s = (s or "").strip()
        if len(s) >= MIN_SECRET_LENGTH:
            secrets.setdefault(s, "a given secret")
    return _Matcher(secrets, demo_keys() if allow_demo_keys else ())


def scan_notebook(
    path_or_nb: Any, extra_secrets: Iterable[str] = (), *, use_env: bool = True, allow_demo_keys: bool = True
) -> list[Finding]:
    """Every API key in a notebook (a path or an nbformat dict), in document order.

    ``extra_secrets``: more exact values to look for. ``use_env``: also look for the keys
    configured in the environment / ``.env`` (see :func:`configured_secrets`).
    ``allow_demo_keys``: do not report the emulator's public demo keys (:func:`demo_keys`).
    """
    nb, label = _load(path_or_nb)
    return _scan(nb, label, _matcher(extra_secrets, use_env, allow_demo_keys))


def _scrub(node: Any, matcher: _Matcher, path: str) -> tuple[Any, int]:
    if isinstance(node, str):
        return matcher.replace(node)
    if isinstance(node, list):
        total = 0
        for i, value in enumerate(node):
            node[i], n = _scrub(value, matcher, _step(path, i))
            total += n
        return node, total
    if isinstance(node, dict):
        total = 0
        bundle = _mime_container(path)
        for key in list(node):
            value = node[key]
            sub = _step(path, key)
            if bundle and isinstance(key, str) and _is_binary_mime(key):
                data = _decode_b64(value)
                n = sum(1 for _ in matcher.find_bytes(data)) if data else 0
                if n:  # a key inside binary data cannot be edited in place: drop the payload
                    del node[key]
                    total += n
                continue
            new_value, n = _scrub(value, matcher, sub)
            total += n
            new_key, nk = matcher.replace(key) if isinstance(key, str) else (key, 0)
            if nk:
                del node[key]
                total += nk
            node[new_key] = new_value
        return node, total
    return node, 0


def scrub_notebook(
    path_or_nb: Any,
    extra_secrets: Iterable[str] = (),
    *,
    use_env: bool = True,
    allow_demo_keys: bool = True,
    write: bool = False,
) -> tuple[Any, int]:
    """A copy of the notebook with every key replaced by its masked form, and how many were.

    Keys inside binary output data (base64 images and the like) cannot be edited, so that
    mime entry is removed. With ``write=True`` and a path, the file is rewritten in place
    (only when something changed). The result is checked with ``nbformat.validate``; if the
    scrubbed notebook does not validate while the original did, :class:`InputError` is
    raised and nothing is written.
    """
    nb, label = _load(path_or_nb)
    fixed, total = _scrub_notebook(nb, label, _matcher(extra_secrets, use_env, allow_demo_keys))
    if total and write and isinstance(path_or_nb, (str, os.PathLike)):
        write_notebook(fixed, path_or_nb)
    return fixed, total


def _scrub_notebook(nb: Any, label: str, matcher: _Matcher) -> tuple[Any, int]:
    was_invalid = _validation_error(nb)
    fixed = copy.deepcopy(nb)
    meta, n_meta = _scrub(fixed.get("metadata", {}), matcher, "metadata")
    if "metadata" in fixed:
        fixed["metadata"] = meta
    total = n_meta
    for _, _, cell in _cells(fixed):
        _, n = _scrub(cell, matcher, "")
        total += n
    if total:
        problem = _validation_error(fixed)
        if problem and not was_invalid:
            raise InputError(f"{label}: the scrubbed notebook would not validate ({problem}); nothing was written.")
    return fixed, total


# -- command line -----------------------------------------------------------------------


def is_checkpoint(path: str | os.PathLike) -> bool:
    """True for a Jupyter checkpoint copy (a file under ``.ipynb_checkpoints``)."""
    return ".ipynb_checkpoints" in Path(path).parts


def iter_notebook_paths(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """Files given, and ``*.ipynb`` below directories given, Jupyter's ``.ipynb_checkpoints`` copies included.

    (A checkpoint keeps the notebook as it was last saved: a key scrubbed from the notebook is
    still there until the checkpoint is scanned and fixed too.)
    """
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found_all = [f for f in p.rglob("*.ipynb") if f.is_file()]
            # the notebooks first, then their checkpoints
            yield from sorted(found_all, key=lambda f: (is_checkpoint(f.relative_to(p)), str(f)))
        elif p.is_file():
            yield p
        elif p.exists():  # a named pipe, a device, a socket: reading it could block forever
            raise InputError(f"{p}: not a regular file or a folder, so it is not scanned.",
                             fix="Give .ipynb files or the folders that hold them.")
        else:
            raise InputError(f"{p}: no such file or directory.")


# -- cassettes (recorded calls beside notebooks) -------------------------------------------------

#: a cassette folder's suffix (``qwen_nb.recorder.CASSETTE_SUFFIX``)
CASSETTE_SUFFIX = ".cassettes"


def is_cassette_file(path: str | os.PathLike) -> bool:
    """True for a file inside a ``NAME.cassettes`` folder."""
    return Path(path).parent.name.endswith(CASSETTE_SUFFIX)


def iter_cassette_paths(paths: Iterable[str | os.PathLike]) -> Iterator[Path]:
    """The files of every ``*.cassettes`` folder given or found below the folders given, and cassette files given."""
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            folders = ([p] if p.name.endswith(CASSETTE_SUFFIX) else []) + sorted(
                f for f in p.rglob("*" + CASSETTE_SUFFIX) if f.is_dir())
            for folder in folders:
                yield from sorted(f for f in folder.iterdir() if f.is_file() and f.suffix == ".json")
        elif p.is_file() and is_cassette_file(p):
            yield p


def _cassette_findings(text: str, label: str, matcher: _Matcher) -> list[Finding]:
    findings: list[Finding] = []
    for n, line in enumerate(text.splitlines(), 1):
        for key, reason in matcher.find(line):
            findings.append(Finding(label, None, f"line {n}", mask_key(key), reason))
        m = re.search(r'"base64": "([A-Za-z0-9+/=]+)"', line)
        data = _decode_b64(m.group(1)) if m else None
        for key, reason in matcher.find_bytes(data) if data else ():
            findings.append(Finding(label, None, f"line {n}(base64)", mask_key(key), reason))
    return findings


def scan_cassette(
    path: str | os.PathLike, extra_secrets: Iterable[str] = (), *, use_env: bool = True, allow_demo_keys: bool = True
) -> list[Finding]:
    """Every API key in a cassette folder (or one of its files), by file and line; arguments as ``scan_notebook``."""
    matcher = _matcher(extra_secrets, use_env, allow_demo_keys)
    files = [Path(path)] if Path(path).is_file() else list(iter_cassette_paths([path]))
    out: list[Finding] = []
    for f in files:
        out += _cassette_findings(f.read_text(encoding="utf-8", errors="replace"), str(f), matcher)
    return out


def _fix_cassette(path: Path, matcher: _Matcher) -> int:
    text = path.read_text(encoding="utf-8")
    fixed, n = matcher.replace(text)
    if n:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(fixed, encoding="utf-8")
        tmp.replace(path)
    return n


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qwen-nb check-notebooks",
        description="Find Model Studio API keys saved in Jupyter notebooks (sources, outputs, "
        "attachments, metadata, widget state) and in their cassettes (NAME.cassettes/ folders of recorded calls). "
        "Exit status: 0 clean, 1 keys found, 2 error.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help=".ipynb files or directories (searched recursively)")
    parser.add_argument("--fix", action="store_true", help="replace each key by its masked form, in place")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only a summary and errors")
    parser.add_argument("--dotenv", metavar="FILE", help=".env file with configured keys (default: nearest .env)")
    parser.add_argument("--no-env", action="store_true", help="ignore keys configured in the environment / .env")
    parser.add_argument("--strict", action="store_true", help="also report the emulator's public demo keys")
    return parser


def _fix_notebook(nb: Any, path: Path, matcher: Any) -> int:
    """Scrub the keys out of a notebook already read, write it back; returns how many were replaced."""
    fixed, n = _scrub_notebook(nb, str(path), matcher)
    write_notebook(fixed, path)
    return n


def cli_main(argv: list[str] | None = None) -> int:
    """``qwen-nb check-notebooks``: returns the exit status (0 clean, 1 keys found, 2 error)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage / help
        return 0 if exc.code in (0, None) else 2
    out, err = sys.stdout, sys.stderr
    if args.no_env:
        secrets: dict[str, str] = {}
    else:
        if args.dotenv and not Path(args.dotenv).is_file():
            print(f"qwen-nb check-notebooks: --dotenv {args.dotenv}: no such file.", file=err)
            return 2
        secrets = configured_secrets(dotenv_path=args.dotenv)
    matcher = _Matcher(secrets, () if args.strict else demo_keys())
    status, n_files, n_keys, n_fixed, dirty = 0, 0, 0, 0, 0
    try:
        paths = [p for p in iter_notebook_paths(args.paths) if not is_cassette_file(p)]
        cassette_files = list(iter_cassette_paths(args.paths))
    except InputError as exc:
        print(f"qwen-nb check-notebooks: {exc.message}", file=err)
        return 2

    def report(findings: list[Any], where: Path, fix: Callable[[], int]) -> None:
        """Count and print one file's findings; with --fix, scrub it."""
        nonlocal dirty, n_keys, status, n_fixed
        if not findings:
            return
        dirty += 1
        n_keys += len(findings)
        status = max(status, 1)
        if not args.quiet:
            for f in findings:
                print(str(f), file=out)
        if args.fix:
            try:
                n_fixed += fix()
            except (InputError, OSError) as exc:
                print(f"error: {where}: not fixed: {exc}", file=err)
                status = 2

    for cfile in cassette_files:
        try:
            findings = _cassette_findings(cfile.read_text(encoding="utf-8", errors="replace"), str(cfile), matcher)
        except OSError as exc:
            print(f"error: {cfile}: {exc.strerror or exc}", file=err)
            status = 2
            continue
        report(findings, cfile, functools.partial(_fix_cassette, cfile, matcher))
    for path in paths:
        n_files += 1
        try:
            nb = read_notebook(path)
        except NotebookReadError as exc:
            print(f"error: {exc}", file=err)
            status = 2
            continue
        report(_scan(nb, str(path), matcher), path, functools.partial(_fix_notebook, nb, path, matcher))
    n_checkpoints = sum(1 for p in paths if is_checkpoint(p))
    what = ("notebook" if n_files == 1 else "notebooks") + (
        f" ({n_checkpoints} checkpoint{'s' if n_checkpoints != 1 else ''})" if n_checkpoints else "")
    if cassette_files:  # counted together: "in 1 of 12 files (8 notebooks, 4 cassette files)"
        what = f"files ({n_files} {what}, {len(cassette_files)} cassette file{'s' if len(cassette_files) != 1 else ''})"
        n_files += len(cassette_files)
    if n_keys:
        verb = f"replaced {n_fixed} by masked keys; review and re-stage" if args.fix else "run with --fix to scrub"
        print(f"{n_keys} API key(s) in {dirty} of {n_files} {what} ({verb}).", file=out)
    elif not args.quiet and status == 0:
        print(f"No API keys found in {n_files} {what}.", file=out)
    return status
