"""Cassettes: recorded HTTP interactions stored as reviewable JSON, redaction, and request matching.

A cassette is a folder, by convention beside the notebook it belongs to
(``analysis.ipynb`` -> ``analysis.cassettes/``), holding ``cassette.json`` (format, routes)
and one file per interaction, in call order (``0001-default-POST-chat-completions.json``).
Every file is pretty-printed JSON with a fixed key order; a body is stored as parsed JSON
when that reproduces its bytes exactly, an SSE stream as the list of its events, anything
else as text (or base64), so replaying sends back the very bytes that were recorded.

Nothing secret is stored: request headers are kept only where they change the answer
(content type, the native SSE switch), and all stored text passes through
``qwen_nb.errors.scrub`` (API keys) and ``redact_workspaces`` (workspace ids).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from qwen_nb import facts
from qwen_nb.errors import InputError, scrub

#: a notebook's cassette folder is ``NAME.cassettes`` beside ``NAME.ipynb``
CASSETTE_SUFFIX = ".cassettes"
#: the folder's index file
INDEX_FILE = "cassette.json"
#: the cassette format written here
FORMAT = 1
#: a workspace id inside longer text (hosts, messages, headers): ``facts.WORKSPACE_PATTERN`` unanchored
WORKSPACE_SEARCH = re.compile(r"(?<![A-Za-z0-9_-])" + facts.WORKSPACE_PATTERN.pattern.strip("^$") + r"(?![a-z0-9])")
#: what a workspace id becomes in a cassette
WORKSPACE_REDACTED = "llm-redacted"
#: request headers stored (and matched): the ones that change the service's answer; never auth or ids
REQUEST_HEADERS = ("content-type", "x-dashscope-sse")
#: response headers never stored: transport details, or set anew when replayed
DROP_RESPONSE_HEADERS = frozenset({
    "content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding", "date", "server",
    "set-cookie", "alt-svc", "strict-transport-security", "via", "proxy-connection", "upgrade",
})
#: body fields that differ between two runs of the same request and do not change the answer
VOLATILE_BODY_FIELDS = ("request_id", "user")

# ways JSON is commonly written: a body stored parsed must come back byte for byte
_JSON_STYLES: dict[str, dict[str, Any]] = {
    "compact": {"separators": (",", ":"), "ensure_ascii": False},
    "compact-ascii": {"separators": (",", ":"), "ensure_ascii": True},
    "spaced": {"separators": (", ", ": "), "ensure_ascii": False},
    "spaced-ascii": {"separators": (", ", ": "), "ensure_ascii": True},
}


def cassette_dir(notebook: str | Path) -> Path:
    """The cassette folder of a notebook (or script): ``NAME.cassettes`` beside ``NAME.ipynb``."""
    path = Path(notebook)
    return path.with_name(path.stem + CASSETTE_SUFFIX)


def redact_workspaces(text: str) -> str:
    """``text`` with every workspace id (``llm-…``) replaced by ``llm-redacted``."""
    return WORKSPACE_SEARCH.sub(WORKSPACE_REDACTED, text) if "llm-" in text else text


def redact(text: str) -> str:
    """``text`` as it may be stored: keys masked by the one scrubber, workspace ids replaced."""
    return redact_workspaces(scrub(text))


# -- bodies ---------------------------------------------------------------------------------------


def is_sse(content_type: str | None) -> bool:
    """Is this a server-sent-events stream?"""
    return "text/event-stream" in (content_type or "").lower()


def encode_body(raw: bytes, content_type: str | None = None) -> dict[str, Any]:
    """A body as stored: ``{"json", "style"}``, ``{"events": [...]}``, ``{"text"}`` or ``{"base64"}``.

    The first that gives back ``raw`` exactly (``decode_body``) is chosen, so a replay is byte-identical.
    """
    if not raw:
        return {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode("ascii")}
    if is_sse(content_type) and text.endswith("\n\n"):
        events = text[:-2].split("\n\n")
        if all(events):
            return {"events": events}
    if text[:1] in "{[":
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        if obj is not None:
            for style, kw in _JSON_STYLES.items():
                if json.dumps(obj, **kw) == text:
                    return {"json": obj, "style": style}
    return {"text": text}


def decode_body(stored: Mapping[str, Any]) -> bytes:
    """The bytes of a body stored by ``encode_body``."""
    if "events" in stored:
        return "".join(e + "\n\n" for e in stored["events"]).encode("utf-8")
    if "json" in stored:
        kw = _JSON_STYLES.get(str(stored.get("style", "compact")), _JSON_STYLES["compact"])
        return json.dumps(stored["json"], **kw).encode("utf-8")
    if "text" in stored:
        return str(stored["text"]).encode("utf-8")
    if "base64" in stored:
        return base64.b64decode(stored["base64"])
    return b""


def sse_chunks(stored: Mapping[str, Any]) -> list[bytes]:
    """A stored body in the pieces a replay sends: one per SSE event, else the whole body."""
    if "events" in stored:
        return [(e + "\n\n").encode("utf-8") for e in stored["events"]]
    return [decode_body(stored)]


# -- requests and matching ------------------------------------------------------------------------


def _normal_json(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _normal_json(v) for k, v in obj.items() if k not in VOLATILE_BODY_FIELDS}
    if isinstance(obj, list):
        return [_normal_json(v) for v in obj]
    return obj


def normal_query(query: str) -> str:
    """A query string with its parameters sorted (and redacted)."""
    return redact(urlencode(sorted(parse_qsl(query, keep_blank_values=True)))) if query else ""


def request_key(route: str, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> str:
    """What a request is matched on: route, method, path, sorted query, the headers that change the
    answer, and the body (JSON with sorted keys, volatile fields left out; redacted like the stored text)."""
    text = redact(body.decode("utf-8", "replace")) if body else ""
    try:
        text = json.dumps(_normal_json(json.loads(text)), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    except ValueError:
        pass
    kept = {h: str(headers.get(h, "")).lower() for h in REQUEST_HEADERS if h != "content-type" and headers.get(h)}
    return "\n".join([route, method.upper(), path, normal_query(query), json.dumps(kept, sort_keys=True), text])


def describe_request(method: str, path: str, body: bytes) -> str:
    """One line naming a request: ``POST /compatible-mode/v1/chat/completions (model 'qwen-plus', "Hello…")``."""
    what = f"{method.upper()} {path}"
    try:
        obj = json.loads(body) if body else None
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        bits = []
        if obj.get("model"):
            bits.append(f"model {obj['model']!r}")
        inner = obj.get("input")
        msgs = inner.get("messages") if isinstance(inner, dict) else obj.get("messages")
        if isinstance(msgs, list) and msgs and isinstance(msgs[-1], dict):
            content = msgs[-1].get("content")
            if isinstance(content, str):
                bits.append(repr(content if len(content) <= 60 else content[:57] + "..."))
        if obj.get("stream"):
            bits.append("stream")
        bits = [b for b in bits if b]
        if bits:
            what += " (" + ", ".join(bits) + ")"
    return redact(what)


# -- interactions and the cassette -----------------------------------------------------------------


@dataclass
class Interaction:
    """One recorded request and the answer the upstream gave."""

    route: str
    method: str
    path: str
    query: str
    request_headers: dict[str, str]
    request_body: dict[str, Any]
    status: int
    response_headers: dict[str, str]
    response_body: dict[str, Any]
    #: file name in the cassette folder (set when saved or loaded)
    name: str = ""

    @classmethod
    def capture(cls, route: str, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes,
                status: int, response_headers: Iterable[tuple[str, str]], response_body: bytes) -> Interaction:
        """An interaction as it may be stored: secrets out, bodies encoded."""
        low = {k.lower(): v for k, v in headers.items()}
        req_headers = {h: redact(low[h]) for h in REQUEST_HEADERS if h in low}
        req_body = encode_body(redact(body.decode("utf-8")).encode("utf-8") if _utf8(body) else body,
                               low.get("content-type"))
        resp_headers: dict[str, str] = {}
        for k, v in response_headers:
            k = k.lower()
            if k not in DROP_RESPONSE_HEADERS and k not in resp_headers:
                resp_headers[k] = redact(v)
        ctype = resp_headers.get("content-type")
        resp = redact(response_body.decode("utf-8")).encode("utf-8") if _utf8(response_body) else response_body
        return cls(route, method.upper(), path, normal_query(query), req_headers, req_body, status,
                   dict(sorted(resp_headers.items())), encode_body(resp, ctype))

    @property
    def body_bytes(self) -> bytes:
        """The response body's bytes, as they are replayed."""
        return decode_body(self.response_body)

    @property
    def key(self) -> str:
        return request_key(self.route, self.method, self.path, self.query, self.request_headers,
                           decode_body(self.request_body))

    def describe(self) -> str:
        return describe_request(self.method, self.path, decode_body(self.request_body))

    def to_json(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "request": {"method": self.method, "path": self.path, "query": self.query,
                        "headers": self.request_headers, "body": self.request_body},
            "response": {"status": self.status, "headers": self.response_headers, "body": self.response_body},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], name: str = "") -> Interaction:
        req, resp = data["request"], data["response"]
        return cls(str(data.get("route", "default")), str(req["method"]), str(req["path"]), str(req.get("query", "")),
                   dict(req.get("headers") or {}), dict(req.get("body") or {}), int(resp["status"]),
                   dict(resp.get("headers") or {}), dict(resp.get("body") or {}), name=name)


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60] or "root"


def dump_json(data: Any) -> str:
    """How every cassette file is written: two-space indents, UTF-8 text, a final newline."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


@dataclass
class Cassette:
    """A folder of recorded interactions; ``next_for`` hands out the recorded answer of a request.

    Identical requests recorded several times are answered in the order they were recorded.
    """

    path: Path
    #: route name -> what it stood for when recorded (region; a workspace profile or not); no secrets
    routes: dict[str, dict[str, Any]] = field(default_factory=dict)
    interactions: list[Interaction] = field(default_factory=list)
    _used: dict[str, int] = field(default_factory=dict, repr=False)
    _index: dict[str, list[Interaction]] | None = field(default=None, repr=False)
    _indexed: int = field(default=0, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- reading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> Cassette:
        """Read a cassette folder; a clear ``InputError`` if it is missing or damaged."""
        folder = Path(path)
        index = folder / INDEX_FILE
        if not index.is_file():
            raise InputError(f"No cassette at {folder}: {INDEX_FILE} is missing.",
                             fix=f"Record one: qwen-nb record --cassette {folder} -- COMMAND (or pytest --nbval "
                             "--qwen-record for notebooks).")
        try:
            meta = json.loads(index.read_text(encoding="utf-8"))
            items = [Interaction.from_json(json.loads(p.read_text(encoding="utf-8")), p.name)
                     for p in sorted(folder.glob("[0-9]*.json"))]
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise InputError(f"The cassette {folder} cannot be read: {type(exc).__name__}: {scrub(exc)}.",
                             fix="Record it again (qwen-nb record), or restore it from version control.") from None
        if int(meta.get("format", 0)) > FORMAT:
            raise InputError(f"The cassette {folder} has format {meta.get('format')}; this qwen-nb reads {FORMAT}.",
                             fix="Upgrade qwen-nb.")
        return cls(folder, dict(meta.get("routes") or {}), items)

    def next_for(self, route: str, method: str, path: str, query: str, headers: Mapping[str, str],
                 body: bytes) -> Interaction | str:
        """The recorded answer to this request (the next unused one of its kind), else why there is none."""
        key = request_key(route, method, path, query, {k.lower(): v for k, v in headers.items()}, body)
        with self._lock:
            if self._index is None or self._indexed != len(self.interactions):
                index: dict[str, list[Interaction]] = {}
                for i in self.interactions:
                    index.setdefault(i.key, []).append(i)
                self._index, self._indexed = index, len(self.interactions)
            same = self._index.get(key, [])
            n = self._used.get(key, 0)
            if n < len(same):
                self._used[key] = n + 1
                return same[n]
        what = describe_request(method, path, body)
        where = f"route {route!r}" if route != "default" else "the default route"
        if same:
            return (f"qwen-nb replay: the cassette {self.path} recorded {what} on {where} {len(same)} time(s); "
                    f"this is call {n + 1}. Record the notebook again (qwen-nb record) to store it.")
        near = [i.describe() for i in self.interactions if (i.route, i.method, i.path) == (route, method.upper(), path)]
        hint = f" Recorded for that path: {'; '.join(near[:3])}." if near else ""
        return (f"qwen-nb replay: no recording of {what} on {where} in the cassette {self.path} "
                f"({len(self.interactions)} interaction(s)).{hint} A replay never makes an answer up: record the "
                "notebook again (qwen-nb record) after changing its calls.")

    def rewind(self) -> None:
        """Start handing out recorded answers from the first again."""
        with self._lock:
            self._used.clear()

    # -- writing ---------------------------------------------------------------------------------
    def start(self, routes: Mapping[str, Mapping[str, Any]], command: str = "") -> None:
        """Begin a new recording: the folder is emptied of old interactions and its index written."""
        self.path.mkdir(parents=True, exist_ok=True)
        for old in self.path.glob("[0-9]*.json"):
            old.unlink()
        self.routes = {k: dict(v) for k, v in routes.items()}
        self.interactions = []
        meta = {"format": FORMAT, "recorded_with": "qwen-nb record", "command": redact(command),
                "routes": self.routes}
        (self.path / INDEX_FILE).write_text(dump_json(meta), encoding="utf-8")

    def add(self, interaction: Interaction) -> Path:
        """Store one interaction (written at once: a crash keeps what was recorded)."""
        with self._lock:
            n = len(self.interactions) + 1
            tail = "-".join(interaction.path.strip("/").split("/")[-2:])
            interaction.name = f"{n:04d}-{_slug(interaction.route)}-{interaction.method}-{_slug(tail)}.json"
            self.interactions.append(interaction)
            target = self.path / interaction.name
            target.write_text(dump_json(interaction.to_json()), encoding="utf-8")
        return target

    def files(self) -> list[Path]:
        """Every file of the cassette (the index first)."""
        return [self.path / INDEX_FILE] + [self.path / i.name for i in self.interactions]
