"""Code snippets: the call of the current choices in the seven languages of the service's pages, for both endpoints.

Each language is written the way the service's own pages write it: the ``openai`` SDKs for
Python, Java, Node.js and Go on the OpenAI-compatible endpoint, the ``dashscope`` SDKs for
Python and Java on the native one, and plain HTTP where the pages use it (C#, PHP, curl, and
Node.js and Go on the native endpoint, which have no DashScope SDK).

Rendering is pure (:func:`render` takes a fully resolved :class:`Target`); only
:func:`snippet` looks at a session to find the profile's region and workspace host. A snippet
calls the service (the profile's region host, or its workspace host) even when the session runs
on the local emulator, so that it works when copied; ``snippet(..., emulator=True)`` asks for
the emulator's URL instead. The key is never written out: every snippet reads it from the
environment (``DASHSCOPE_API_KEY``, or a named profile's own variable).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from qwen_nb import facts
from qwen_nb._profiles import Profile
from qwen_nb._regions import REGIONS, Region, get_region
from qwen_nb._secrets import scrub
from qwen_nb.errors import InputError

if TYPE_CHECKING:
    from qwen_nb.session import Session

ENV_VAR = facts.DEFAULT_KEY_VAR
DEFAULT_PROMPT = "Who are you?"
APIS = facts.API_NAMES


@dataclass(frozen=True)
class Language:
    """One snippet language: id, display label, Markdown fence, comment prefix."""

    id: str
    label: str
    fence: str
    comment: str
    aliases: tuple[str, ...] = ()


LANGUAGES: dict[str, Language] = {
    lang.id: lang
    for lang in (
        Language("python", "Python", "python", "#", ("py", "python3")),
        Language("curl", "curl", "bash", "#", ("sh", "bash", "shell", "http")),
        Language("node", "Node.js", "javascript", "//", ("js", "javascript", "nodejs", "node.js", "typescript")),
        Language("java", "Java", "java", "//", ()),
        Language("go", "Go", "go", "//", ("golang",)),
        Language("csharp", "C#", "csharp", "//", ("c#", "cs", "dotnet", ".net")),
        Language("php", "PHP", "php", "//", ()),
    )
}
_ALIASES = {alias: lang.id for lang in LANGUAGES.values() for alias in (lang.id, *lang.aliases)}
#: ids that also fix the api, e.g. "python-dashscope"
_API_SUFFIXES = {"openai": "openai", "compatible": "openai", "dashscope": "dashscope", "native": "dashscope"}

#: request parameters a snippet can carry (the rest of a Session call's options are not shown)
PARAMS = tuple(p for p in facts.CORE_PARAMS if p not in ("response_format", "tools"))


@dataclass(frozen=True)
class Style:
    """How the service's pages call one endpoint from one language: the library, and how to set it up."""

    #: "openai SDK", "DashScope Java SDK", "HTTP" ...
    library: str
    #: how to install and run it (one line, shown in the snippet's header)
    setup: str


#: (language, api) -> the page's way. The pages: "Call a model in a sub-workspace" (all seven
#: languages on both endpoints) and "Install the SDK" (package names, versions); see the README.
STYLES: dict[tuple[str, str], Style] = {
    ("python", "openai"): Style("openai SDK", "pip install -U openai"),
    ("python", "dashscope"): Style("dashscope SDK", "pip install -U dashscope"),
    ("java", "openai"): Style(
        "OpenAI Java SDK",
        "Maven com.openai:openai-java (3.5.0 is the version the service's SDK page recommends), Java 8+; "
        "save as Main.java",
    ),
    ("java", "dashscope"): Style(
        "DashScope Java SDK", "Maven com.alibaba:dashscope-sdk-java (2.12.0 or later), Java 8+; save as Main.java"
    ),
    ("node", "openai"): Style("openai SDK", "npm install openai; save as main.mjs, run: node main.mjs"),
    ("node", "dashscope"): Style(
        "HTTP", "Node.js 18+ (built-in fetch; DashScope has no Node.js SDK); save as main.mjs, run: node main.mjs"
    ),
    ("go", "openai"): Style("openai-go SDK", "go get github.com/openai/openai-go/v3 (Go 1.22+); run: go run main.go"),
    ("go", "dashscope"): Style("HTTP", "Go standard library (DashScope has no Go SDK); run: go run main.go"),
    ("csharp", "openai"): Style("HTTP", ".NET 6+ console project (Program.cs); run: dotnet run"),
    ("csharp", "dashscope"): Style("HTTP", ".NET 6+ console project (Program.cs); run: dotnet run"),
    ("php", "openai"): Style("HTTP", "PHP with the curl extension; run: php main.php"),
    ("php", "dashscope"): Style("HTTP", "PHP with the curl extension; run: php main.php"),
    ("curl", "openai"): Style("HTTP", "any shell with curl"),
    ("curl", "dashscope"): Style("HTTP", "any shell with curl"),
}


@dataclass(frozen=True)
class Target:
    """Everything a snippet needs, resolved: where to call, what, and what to say about it."""

    api: str
    base_url: str
    model: str
    prompt: str = DEFAULT_PROMPT
    system: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    stream: bool = False
    profile: str | None = None
    region_label: str | None = None
    workspace: str | None = None
    #: set when base_url is a local emulator: the service's base URL for the same call
    service_base_url: str | None = None
    #: the environment variable the snippet reads the key from (the profile's own)
    key_var: str = ENV_VAR
    #: earlier turns sent before ``prompt``: (role, content) pairs, oldest first
    history: tuple[tuple[str, str], ...] = ()
    #: a Responses API call (``client.responses.create``) instead of chat, with these built-in tools
    responses: bool = False
    tools: tuple[str, ...] = ()
    previous_response_id: str | None = None

    @property
    def url(self) -> str:
        """The full request URL (chat completions, native text generation, or the Responses API)."""
        if self.responses:
            return self.base_url.rstrip("/") + facts.KIND_PATHS[("responses", "openai")]
        path = facts.COMPATIBLE_CHAT if self.api == "openai" else facts.NATIVE_TEXT_GENERATION
        return self.base_url.rstrip("/") + path

    @property
    def sdk_default_base(self) -> bool:
        """True when the base URL is the one the DashScope SDKs call by default (Beijing's shared host)."""
        default = REGIONS[facts.DASHSCOPE_SDK_DEFAULT_REGION].native_base()
        return self.api == "dashscope" and self.base_url.rstrip("/") == default


@dataclass(frozen=True)
class Snippet:
    """Code for one language; shown as a fenced code block in a notebook."""

    code: str
    language: str
    api: str
    label: str
    fence: str

    def __str__(self) -> str:
        return self.code

    def _repr_markdown_(self) -> str:
        ticks = "```"
        while ticks in self.code:
            ticks += "`"
        return f"{ticks}{self.fence}\n{self.code.rstrip()}\n{ticks}\n"

    def _repr_html_(self) -> str:
        return (
            f'<div class="qwen-nb-snippet"><div><b>{html.escape(self.label)}</b></div>'
            f'<pre><code class="language-{self.fence}">{html.escape(self.code)}</code></pre></div>'
        )


class SnippetSet:
    """Snippets for several languages; index by language id (``s["curl"]``)."""

    def __init__(self, snippets: list[Snippet]) -> None:
        self.snippets = list(snippets)

    def __iter__(self) -> Iterator[Snippet]:
        return iter(self.snippets)

    def __len__(self) -> int:
        return len(self.snippets)

    def __getitem__(self, key: int | str) -> Snippet:
        if isinstance(key, int):
            return self.snippets[key]
        lang = _ALIASES.get(str(key).lower(), str(key).lower())
        for s in self.snippets:
            if s.language == lang:
                return s
        raise KeyError(key)

    @property
    def languages(self) -> list[str]:
        """Language ids, in display order."""
        return [s.language for s in self.snippets]

    def __repr__(self) -> str:
        return f"SnippetSet({', '.join(s.label for s in self.snippets)})"

    def __str__(self) -> str:
        """Every snippet's code, each under its label (what ``print(snippet())`` shows)."""
        return "\n\n".join(f"# ---- {s.label}\n{s.code.rstrip()}" for s in self.snippets) + "\n"

    def _repr_markdown_(self) -> str:
        return "\n".join(f"#### {s.label}\n\n{s._repr_markdown_()}" for s in self.snippets)

    def _repr_html_(self) -> str:
        return "".join(s._repr_html_() for s in self.snippets)


# --------------------------------------------------------------------------- validation


def normalize_language(language: str, api: str | None = None) -> tuple[str, str | None]:
    """``(language id, api or None)`` for a language name; ``"python-dashscope"`` also fixes the api."""
    if not isinstance(language, str) or not language.strip():
        raise InputError(f"Language must be a non-empty string, got {language!r}.", fix=_lang_fix())
    key = re.sub(r"[\s_()]+", "-", language.strip().lower()).strip("-")
    if key in _ALIASES:
        return _ALIASES[key], api
    base, _, suffix = key.rpartition("-")
    if base in _ALIASES and suffix in _API_SUFFIXES:
        fixed = _API_SUFFIXES[suffix]
        if api is not None and api != fixed:
            raise InputError(
                f"Language {language!r} implies api={fixed!r} but api={api!r} was given.",
                fix=f"Drop one of them, e.g. language={base!r}, api={api!r}.",
            )
        return _ALIASES[base], fixed
    raise InputError(f"Unknown snippet language {language!r}.", fix=_lang_fix())


def _lang_fix() -> str:
    return f"Use one of: {', '.join(LANGUAGES)} (or python-openai / python-dashscope)."


def check_api(api: str) -> str:
    """Validate ``api`` ("openai" or "dashscope")."""
    if api not in APIS:
        raise InputError(f"Unknown api {api!r}.", fix='Use api="openai" (compatible mode) or api="dashscope" (native).')
    return api


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the parameters a snippet can show; reject unknown names and bad values, saying what is allowed."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if k not in PARAMS:
            raise InputError(f"Snippets cannot show parameter {k!r}.", fix=f"Use only: {', '.join(PARAMS)}.")
        if v is None:
            continue
        spec = facts.PARAMS[k]
        problem = spec.problem(v)
        if problem:
            raise InputError(f"{k} {problem}.", fix=spec.hint or None)
        out[k] = list(v) if isinstance(v, tuple) else v
    return out


# --------------------------------------------------------------------------- request bodies (pure)


def messages(target: Target) -> list[dict[str, str]]:
    """The chat messages of the call."""
    msgs = [{"role": "system", "content": target.system}] if target.system else []
    msgs += [{"role": role, "content": content} for role, content in target.history]
    return msgs + [{"role": "user", "content": target.prompt}]


def response_input(target: Target) -> str | list[dict[str, str]]:
    """A Responses API call's ``input``: the prompt, or the messages when there is a system prompt or history."""
    return messages(target) if target.system or target.history else target.prompt


def request_body(target: Target) -> dict[str, Any]:
    """The JSON body the call sends, on the target's protocol."""
    if target.responses:
        call: dict[str, Any] = {"model": target.model, "input": response_input(target)}
        if target.tools:
            call["tools"] = [{"type": t} for t in target.tools]
        if target.previous_response_id:
            call["previous_response_id"] = target.previous_response_id
        if target.stream:
            call["stream"] = True
        return call
    if target.api == "openai":
        body: dict[str, Any] = {"model": target.model, "messages": messages(target), **target.params}
        if target.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body
    parameters: dict[str, Any] = {"result_format": "message", **target.params}
    if target.stream:
        parameters["incremental_output"] = True
    return {"model": target.model, "input": {"messages": messages(target)}, "parameters": parameters}


def _extra_body(target: Target) -> dict[str, Any]:
    """Parameters the OpenAI SDKs have no argument for (Qwen's own): sent as extra body fields."""
    return {k: v for k, v in target.params.items() if facts.PARAMS[k].extra_body}


def _typed(target: Target) -> dict[str, Any]:
    """Parameters the OpenAI SDKs take as typed arguments."""
    return {k: v for k, v in target.params.items() if not facts.PARAMS[k].extra_body}


# --------------------------------------------------------------------------- literals per language


def _json(value: Any, indent: int | None = 2) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def _py(value: Any, indent: str = "") -> str:
    """A Python literal, double-quoted strings, one item per line for lists and dicts."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, (int, float, str)):
        return json.dumps(value, ensure_ascii=False)
    inner = indent + "    "
    if isinstance(value, Mapping):
        if all(not isinstance(v, (Mapping, list, tuple)) for v in value.values()):
            return "{" + ", ".join(f"{_py(k)}: {_py(v)}" for k, v in value.items()) + "}"
        items = "".join(f"{inner}{_py(k)}: {_py(v, inner)},\n" for k, v in value.items())
        return "{\n" + items + indent + "}"
    if isinstance(value, (list, tuple)):
        if all(not isinstance(v, (Mapping, list, tuple)) for v in value):
            return "[" + ", ".join(_py(v) for v in value) + "]"
        items = "".join(f"{inner}{_py(v, inner)},\n" for v in value)
        return "[\n" + items + indent + "]"
    raise InputError(f"Cannot write {type(value).__name__} value {value!r} into a snippet.")


_JS_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


def _js(value: Any, indent: str = "") -> str:
    """A JavaScript literal: object keys unquoted where they are identifiers, one item per line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float, str)):
        return json.dumps(value, ensure_ascii=False)
    inner = indent + "  "
    if isinstance(value, Mapping):
        keys = [k if _JS_IDENT.match(k) else json.dumps(k) for k in value]
        if all(not isinstance(v, (Mapping, list, tuple)) for v in value.values()):
            return "{ " + ", ".join(f"{k}: {_js(v)}" for k, v in zip(keys, value.values(), strict=True)) + " }"
        items = "".join(f"{inner}{k}: {_js(v, inner)},\n" for k, v in zip(keys, value.values(), strict=True))
        return "{\n" + items + indent + "}"
    if all(not isinstance(v, (Mapping, list, tuple)) for v in value):
        return "[" + ", ".join(_js(v) for v in value) + "]"
    items = "".join(f"{inner}{_js(v, inner)},\n" for v in value)
    return "[\n" + items + indent + "]"


_PHP_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _php(value: Any, indent: str = "") -> str:
    """A PHP literal: arrays with ``=>``, single-quoted strings."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        if not any(ord(ch) < 0x20 for ch in value):
            return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
        out = []
        for ch in value:  # double quotes, so that newlines and tabs can be escaped
            if ch in '\\"$':
                out.append("\\" + ch)
            elif ch in _PHP_ESCAPES:
                out.append(_PHP_ESCAPES[ch])
            elif ord(ch) < 0x20:
                out.append(f"\\u{{{ord(ch):x}}}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    inner = indent + "    "
    if isinstance(value, Mapping):
        items = "".join(f"{inner}{_php(k)} => {_php(v, inner)},\n" for k, v in value.items())
    else:
        items = "".join(f"{inner}{_php(v, inner)},\n" for v in value)
    return "[\n" + items + indent + "]"


def _c_string(text: str) -> str:
    """A double-quoted string literal valid in JavaScript, Java, Go and C#."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ch in "\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _shell_single(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def _stop_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


# --------------------------------------------------------------------------- header comments


def _header(lang: Language, target: Target, style: Style) -> str:
    endpoint = facts.APIS[target.api].label + " endpoint"
    lines = [f"{lang.label} · {endpoint} · {style.library}", f"Setup: {style.setup}"]
    who = f"model {target.model}"
    if target.profile:
        who += f" · profile {target.profile!r}"
    if target.region_label:
        who += f" · {target.region_label}"
    if target.workspace:
        who += f" · workspace {target.workspace}"
    lines.append(who)
    if target.workspace:
        lines.append(
            f"The API key is read from {target.key_var}; use a key of workspace {target.workspace}: "
            "this is the workspace's own host, which takes no other workspace's key."
        )
    else:
        region = target.region_label or "this region"
        lines.append(
            f"The API key is read from {target.key_var}; use a key of {region}: "
            "keys are per region and per billing plan."
        )
    lines.append(f"Endpoint: POST {target.url}")
    if target.sdk_default_base and lang.id in ("python", "java"):
        lines.append("The DashScope SDK calls Beijing by default, so this snippet sets no base URL.")
    if target.service_base_url:
        lines.append(
            f"This URL is a local qwen-nb emulator, not Model Studio; on the service: {target.service_base_url}"
        )
    return "\n".join(f"{lang.comment} {line}" for line in lines) + "\n"


# --------------------------------------------------------------------------- Python (both SDKs)


def _openai_client(target: Target) -> str:
    """The imports and the ``OpenAI`` client of a Python snippet (key from the environment)."""
    return (
        "import os\n\nfrom openai import OpenAI\n\n"
        "client = OpenAI(\n"
        f'    api_key=os.getenv("{target.key_var}"),\n'
        f"    base_url={_py(target.base_url)},\n"
        ")\n\n"
    )


def _python_openai(target: Target) -> str:
    args = [f"model={_py(target.model)}", f"messages={_py(messages(target), '    ')}"]
    args += [f"{k}={_py(v, '    ')}" for k, v in _typed(target).items()]
    extras = _extra_body(target)
    if extras:
        note = "# Qwen-specific options, sent as extra fields of the request body\n    "
        args.append(f"{note}extra_body={_py(extras, '    ')}")
    if target.stream:
        args += ["stream=True", 'stream_options={"include_usage": True}']
    call = "client.chat.completions.create(\n" + "".join(f"    {a},\n" for a in args) + ")\n"
    head = _openai_client(target)
    if not target.stream:
        return head + "completion = " + call + "print(completion.choices[0].message.content)\n"
    return (
        head
        + "stream = "
        + call
        + "for chunk in stream:\n"
        + "    if chunk.choices and chunk.choices[0].delta.content:\n"
        + '        print(chunk.choices[0].delta.content, end="", flush=True)\n'
        + "print()\n"
    )


def _python_responses(target: Target) -> str:
    body = request_body(target)
    args = [f"{k}={_py(v, '    ')}" for k, v in body.items() if k != "stream"]
    if target.stream:
        args.append("stream=True")
    call = "client.responses.create(\n" + "".join(f"    {a},\n" for a in args) + ")\n"
    head = _openai_client(target)
    if not target.stream:
        return (head + "response = " + call
                + "for item in response.output:  # the built-in tool calls, then the answer\n"
                "    if item.type != \"message\":\n        print(f\"[{item.type}: {item.status}]\")\n"
                "print(response.output_text)\nprint(\"response id (previous_response_id of the next turn):\", "
                "response.id)\n")
    return (
        head
        + "stream = "
        + call
        + "for event in stream:\n"
        + "    if event.type == \"response.output_item.done\" and event.item.type != \"message\":\n"
        + "        print(f\"[{event.item.type}: {event.item.status}]\")  # a built-in tool call finished\n"
        + "    elif event.type == \"response.output_text.delta\":\n"
        + "        print(event.delta, end=\"\", flush=True)\n"
        + "    elif event.type == \"response.completed\":\n"
        + "        print(\"\\nresponse id (previous_response_id of the next turn):\", event.response.id)\n"
    )


def _python_dashscope(target: Target) -> str:
    head = "import os\n\nimport dashscope\n\n"
    if not target.sdk_default_base:
        head += f"dashscope.base_http_api_url = {_py(target.base_url)}\n\n"
    head += f"messages = {_py(messages(target))}\n"
    args = [
        f'api_key=os.getenv("{target.key_var}")',
        f"model={_py(target.model)}",
        "messages=messages",
        'result_format="message"',
    ]
    args += [f"{k}={_py(v, '    ')}" for k, v in target.params.items()]
    if target.stream:
        args += ["stream=True", "incremental_output=True"]
    call = "dashscope.Generation.call(\n" + "".join(f"    {a},\n" for a in args) + ")\n"
    fail = 'raise SystemExit(f"HTTP {response.status_code} {response.code}: {response.message}")'
    if not target.stream:
        return (
            head
            + "response = "
            + call
            + "if response.status_code != 200:\n"
            + f"    {fail}\n"
            + "print(response.output.choices[0].message.content)\n"
        )
    return (
        head
        + "responses = "
        + call
        + "for response in responses:\n"
        + "    if response.status_code != 200:\n"
        + f"        {fail}\n"
        + '    print(response.output.choices[0].message.content, end="", flush=True)\n'
        + "print()\n"
    )


# --------------------------------------------------------------------------- Node.js


def _node_openai(target: Target) -> str:
    body: dict[str, Any] = {"model": target.model, "messages": messages(target), **_typed(target)}
    body.update(_extra_body(target))  # Qwen's own options go in the same object
    if target.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    call = f"await openai.chat.completions.create({_js(body, '  ')});\n"
    if target.stream:
        use = (
            f"  const stream = {call}"
            "  for await (const chunk of stream) {\n"
            '    process.stdout.write(chunk.choices[0]?.delta?.content || "");\n'
            "  }\n"
            '  process.stdout.write("\\n");\n'
        )
    else:
        use = f"  const completion = {call}  console.log(completion.choices[0].message.content);\n"
    return (
        'import OpenAI from "openai";\n\n'
        "const openai = new OpenAI({\n"
        f"  apiKey: process.env.{target.key_var},\n"
        f"  baseURL: {_c_string(target.base_url)},\n"
        "});\n\n"
        "async function main() {\n" + use + "}\n\n"
        "main();\n"
    )


def _node_http(target: Target) -> str:
    where = "result.output" if target.api == "dashscope" else "result"
    answer = f"{where}.choices[0].message.content"
    if target.stream:
        read = (
            "  // Server-sent events, printed as they arrive.\n"
            "  const decoder = new TextDecoder();\n"
            "  for await (const chunk of response.body) {\n"
            "    process.stdout.write(decoder.decode(chunk, { stream: true }));\n"
            "  }\n"
        )
    else:
        read = f"  const result = await response.json();\n  console.log({answer});\n"
    sse = '      "X-DashScope-SSE": "enable",\n' if target.stream and target.api == "dashscope" else ""
    return (
        f"const apiKey = process.env.{target.key_var};\n"
        f"const url = {_c_string(target.url)};\n"
        f"const data = {_js(request_body(target))};\n\n"
        "async function main() {\n"
        "  const response = await fetch(url, {\n"
        '    method: "POST",\n'
        "    headers: {\n"
        "      Authorization: `Bearer ${apiKey}`,\n"
        '      "Content-Type": "application/json",\n'
        f"{sse}"
        "    },\n"
        "    body: JSON.stringify(data),\n"
        "  });\n"
        "  if (!response.ok) {\n"
        "    console.error(`HTTP ${response.status}: ${await response.text()}`);\n"
        "    process.exit(1);\n"
        "  }\n" + read + "}\n\n"
        "main();\n"
    )


def _node(target: Target) -> str:
    return _node_openai(target) if target.api == "openai" else _node_http(target)


# --------------------------------------------------------------------------- Java (both SDKs)


def _java_double(v: Any) -> str:
    return repr(float(v))


def _java_strings(values: list[str]) -> str:
    return ", ".join(_c_string(s) for s in values)


def _java_openai(target: Target) -> str:
    imports = [
        "com.openai.client.OpenAIClient",
        "com.openai.client.okhttp.OpenAIOkHttpClient",
        "com.openai.models.chat.completions.ChatCompletionCreateParams",
    ]
    b = ["                .model(" + _c_string(target.model) + ")"]
    if target.system:
        b.append(f"                .addSystemMessage({_c_string(target.system)})")
    b.append(f"                .addUserMessage({_c_string(target.prompt)})")
    typed = _typed(target)
    if "temperature" in typed:
        b.append(f"                .temperature({_java_double(typed['temperature'])})")
    if "top_p" in typed:
        b.append(f"                .topP({_java_double(typed['top_p'])})")
    if "max_tokens" in typed:
        b.append(f"                .maxTokens({int(typed['max_tokens'])}L)")
    if "seed" in typed:
        b.append(f"                .seed({int(typed['seed'])}L)")
    if "stop" in typed:
        stop = typed["stop"]
        if isinstance(stop, str):
            b.append(f"                .stop({_c_string(stop)})")
        else:
            imports.append("java.util.List")
            b.append(f"                .stopOfStrings(List.of({_java_strings(stop)}))")
    extras = _extra_body(target)
    if extras:
        imports.append("com.openai.core.JsonValue")
        b.append("                // Qwen-specific options, sent as extra fields of the request body")
        for k, v in extras.items():
            lit = ("true" if v else "false") if isinstance(v, bool) else str(v)
            b.append(f"                .putAdditionalBodyProperty({_c_string(k)}, JsonValue.from({lit}))")
    if target.stream:
        imports += [
            "com.openai.core.http.StreamResponse",
            "com.openai.models.chat.completions.ChatCompletionChunk",
            "com.openai.models.chat.completions.ChatCompletionStreamOptions",
        ]
        b.append("                .streamOptions(ChatCompletionStreamOptions.builder().includeUsage(true).build())")
        use = (
            "        try (StreamResponse<ChatCompletionChunk> stream =\n"
            "                client.chat().completions().createStreaming(params)) {\n"
            "            stream.stream().forEach(chunk -> chunk.choices().forEach(\n"
            "                    choice -> choice.delta().content().ifPresent(System.out::print)));\n"
            "        }\n"
            "        System.out.println();\n"
        )
    else:
        imports.append("com.openai.models.chat.completions.ChatCompletion")
        use = (
            "        ChatCompletion completion = client.chat().completions().create(params);\n"
            '        System.out.println(completion.choices().get(0).message().content().orElse(""));\n'
        )
    return (
        "".join(f"import {i};\n" for i in sorted(set(imports)))
        + "\n"
        "public class Main {\n"
        "    public static void main(String[] args) {\n"
        "        OpenAIClient client = OpenAIOkHttpClient.builder()\n"
        f'                .apiKey(System.getenv("{target.key_var}"))\n'
        f"                .baseUrl({_c_string(target.base_url)})\n"
        "                .build();\n\n"
        "        ChatCompletionCreateParams params = ChatCompletionCreateParams.builder()\n"
        + "\n".join(b)
        + "\n                .build();\n\n"
        + use
        + "        client.close();\n"
        "    }\n"
        "}\n"
    )


def _java_dashscope(target: Target) -> str:
    imports = [
        "java.util.Arrays",
        "com.alibaba.dashscope.aigc.generation.Generation",
        "com.alibaba.dashscope.aigc.generation.GenerationParam",
        "com.alibaba.dashscope.aigc.generation.GenerationResult",
        "com.alibaba.dashscope.common.Message",
        "com.alibaba.dashscope.common.Role",
    ]
    if target.sdk_default_base:
        gen = "        Generation gen = new Generation();\n"
    else:
        imports.append("com.alibaba.dashscope.protocol.Protocol")
        gen = f"        Generation gen = new Generation(Protocol.HTTP.getValue(), {_c_string(target.base_url)});\n"
    msgs = []
    names = []
    if target.system:
        msgs.append(
            "        Message systemMsg = Message.builder()\n"
            "                .role(Role.SYSTEM.getValue())\n"
            f"                .content({_c_string(target.system)})\n"
            "                .build();\n"
        )
        names.append("systemMsg")
    msgs.append(
        "        Message userMsg = Message.builder()\n"
        "                .role(Role.USER.getValue())\n"
        f"                .content({_c_string(target.prompt)})\n"
        "                .build();\n"
    )
    names.append("userMsg")
    b = [
        f'                .apiKey(System.getenv("{target.key_var}"))',
        f"                .model({_c_string(target.model)})",
        f"                .messages(Arrays.asList({', '.join(names)}))",
        "                .resultFormat(GenerationParam.ResultFormat.MESSAGE)",
    ]
    p = target.params
    if "temperature" in p:
        b.append(f"                .temperature({float(p['temperature'])!r}f)")
    if "top_p" in p:
        b.append(f"                .topP({_java_double(p['top_p'])})")
    if "max_tokens" in p:
        b.append(f"                .maxTokens({int(p['max_tokens'])})")
    if "seed" in p:
        b.append(f"                .seed({int(p['seed'])})")
    if "stop" in p:
        b.append(f"                .stopStrings(Arrays.asList({_java_strings(_stop_list(p['stop']))}))")
    if "enable_thinking" in p:
        b.append(f"                .enableThinking({'true' if p['enable_thinking'] else 'false'})")
    if "thinking_budget" in p:
        b.append(f"                .thinkingBudget({int(p['thinking_budget'])})")
    if target.stream:
        imports.append("io.reactivex.Flowable")
        b.append("                .incrementalOutput(true)")
        use = (
            "        Flowable<GenerationResult> results = gen.streamCall(param);\n"
            "        results.blockingForEach(result ->\n"
            "                System.out.print(result.getOutput().getChoices().get(0).getMessage().getContent()));\n"
            "        System.out.println();\n"
        )
    else:
        use = (
            "        GenerationResult result = gen.call(param);\n"
            "        System.out.println(result.getOutput().getChoices().get(0).getMessage().getContent());\n"
        )
    return (
        "".join(f"import {i};\n" for i in sorted(set(imports)))
        + "\n"
        "public class Main {\n"
        "    public static void main(String[] args) throws Exception {\n"
        + gen
        + "".join(msgs)
        + "        GenerationParam param = GenerationParam.builder()\n"
        + "\n".join(b)
        + "\n                .build();\n"
        + use
        + "        System.exit(0);  // the SDK's HTTP threads would keep the JVM alive a while\n"
        "    }\n"
        "}\n"
    )


def _java(target: Target) -> str:
    return _java_openai(target) if target.api == "openai" else _java_dashscope(target)


# --------------------------------------------------------------------------- Go


def _go_openai(target: Target) -> str:
    msgs = []
    if target.system:
        msgs.append(f"\t\t\topenai.SystemMessage({_c_string(target.system)}),\n")
    msgs.append(f"\t\t\topenai.UserMessage({_c_string(target.prompt)}),\n")
    fields = [("Model", _c_string(target.model))]  # one line each, aligned as gofmt does
    typed = _typed(target)
    if "temperature" in typed:
        fields.append(("Temperature", f"openai.Float({typed['temperature']!r})"))
    if "top_p" in typed:
        fields.append(("TopP", f"openai.Float({typed['top_p']!r})"))
    if "max_tokens" in typed:
        fields.append(("MaxTokens", f"openai.Int({int(typed['max_tokens'])})"))
    if "seed" in typed:
        fields.append(("Seed", f"openai.Int({int(typed['seed'])})"))
    if "stop" in typed:
        stop = typed["stop"]
        union = (
            f"OfString: openai.String({_c_string(stop)})"
            if isinstance(stop, str)
            else "OfStringArray: []string{" + ", ".join(_c_string(s) for s in stop) + "}"
        )
        fields.append(("Stop", f"openai.ChatCompletionNewParamsStopUnion{{{union}}}"))
    if target.stream:
        fields.append(("StreamOptions", "openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}"))
    width = max(len(k) for k, _ in fields) + 1
    extras = _extra_body(target)
    opts = ""
    if extras:
        sets = "".join(
            f"\t\toption.WithJSONSet({_c_string(k)}, {('true' if v else 'false') if isinstance(v, bool) else v}),\n"
            for k, v in extras.items()
        )
        opts = "\t// Qwen-specific options, sent as extra fields of the request body\n" + (
            "\topts := []option.RequestOption{\n" + sets + "\t}\n"
        )
    more = ", opts..." if extras else ""
    if target.stream:
        use = (
            f"\tstream := client.Chat.Completions.NewStreaming(context.TODO(), params{more})\n"
            "\tfor stream.Next() {\n"
            "\t\tchunk := stream.Current()\n"
            "\t\tif len(chunk.Choices) > 0 {\n"
            "\t\t\tfmt.Print(chunk.Choices[0].Delta.Content)\n"
            "\t\t}\n"
            "\t}\n"
            "\tif err := stream.Err(); err != nil {\n"
            "\t\tpanic(err.Error())\n"
            "\t}\n"
            "\tfmt.Println()\n"
        )
    else:
        use = (
            f"\tcompletion, err := client.Chat.Completions.New(context.TODO(), params{more})\n"
            "\tif err != nil {\n"
            "\t\tpanic(err.Error())\n"
            "\t}\n"
            "\tfmt.Println(completion.Choices[0].Message.Content)\n"
        )
    base = target.base_url.rstrip("/") + "/"  # openai-go joins paths onto a base URL that ends in "/"
    return (
        "package main\n\n"
        "import (\n"
        '\t"context"\n'
        '\t"fmt"\n'
        '\t"os"\n\n'
        '\t"github.com/openai/openai-go/v3"\n'
        '\t"github.com/openai/openai-go/v3/option"\n'
        ")\n\n"
        "func main() {\n"
        "\tclient := openai.NewClient(\n"
        f'\t\toption.WithAPIKey(os.Getenv("{target.key_var}")),\n'
        f"\t\toption.WithBaseURL({_c_string(base)}),\n"
        "\t)\n"
        "\tparams := openai.ChatCompletionNewParams{\n"
        "\t\tMessages: []openai.ChatCompletionMessageParamUnion{\n" + "".join(msgs) + "\t\t},\n"
        + "".join(f"\t\t{(k + ':').ljust(width)} {v},\n" for k, v in fields)
        + "\t}\n"
        f"{opts}"
        f"{use}"
        "}\n"
    )


def _go_http(target: Target) -> str:
    body = _json(request_body(target)).replace("`", "\\u0060")  # a backtick would end the raw string
    sse = '\treq.Header.Set("X-DashScope-SSE", "enable")\n' if target.stream and target.api == "dashscope" else ""
    if target.stream:
        read = (
            "\t// Server-sent events, printed as they arrive.\n"
            "\tif _, err := io.Copy(os.Stdout, resp.Body); err != nil {\n\t\tlog.Fatal(err)\n\t}\n"
        )
    else:
        read = (
            "\tbodyText, err := io.ReadAll(resp.Body)\n"
            "\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n"
            '\tfmt.Printf("%s\\n", bodyText)\n'
        )
    imports = ["bytes", "io", "log", "net/http", "os"] + ([] if target.stream else ["fmt"])
    return (
        "package main\n\n"
        "import (\n" + "".join(f'\t"{i}"\n' for i in sorted(imports)) + ")\n\n"
        "func main() {\n"
        "\tclient := &http.Client{}\n"
        f"\turl := {_c_string(target.url)}\n"
        f"\tbody := []byte(`{body}`)\n\n"
        '\treq, err := http.NewRequest("POST", url, bytes.NewReader(body))\n'
        "\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n"
        f'\treq.Header.Set("Authorization", "Bearer "+os.Getenv("{target.key_var}"))\n'
        '\treq.Header.Set("Content-Type", "application/json")\n'
        f"{sse}"
        "\tresp, err := client.Do(req)\n"
        "\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n"
        "\tdefer resp.Body.Close()\n"
        f"{read}"
        "\tif resp.StatusCode != http.StatusOK {\n\t\tos.Exit(1)\n\t}\n"
        "}\n"
    )


def _go(target: Target) -> str:
    return _go_openai(target) if target.api == "openai" else _go_http(target)


# --------------------------------------------------------------------------- C#, PHP, curl (HTTP)


def _csharp(target: Target) -> str:
    body = _json(request_body(target)).replace('"', '""')
    sse = (
        '        request.Headers.Add("X-DashScope-SSE", "enable");\n'
        if target.stream and target.api == "dashscope"
        else ""
    )
    if target.stream:
        send = (
            "        using var response =\n"
            "            await httpClient.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);\n"
            "        // Server-sent events, printed as they arrive.\n"
            "        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());\n"
            "        while (await reader.ReadLineAsync() is string line)\n"
            "        {\n"
            "            Console.WriteLine(line);\n"
            "        }\n"
        )
    else:
        send = (
            "        using var response = await httpClient.SendAsync(request);\n"
            "        Console.WriteLine(await response.Content.ReadAsStringAsync());\n"
        )
    return (
        "using System.Net.Http.Headers;\n"
        "using System.Text;\n\n"
        "class Program\n"
        "{\n"
        "    private static readonly HttpClient httpClient = new HttpClient();\n\n"
        "    static async Task Main(string[] args)\n"
        "    {\n"
        f'        string? apiKey = Environment.GetEnvironmentVariable("{target.key_var}");\n'
        "        if (string.IsNullOrEmpty(apiKey))\n"
        "        {\n"
        f'            Console.Error.WriteLine("Set the {target.key_var} environment variable first.");\n'
        "            Environment.Exit(1);\n"
        "        }\n\n"
        f"        string url = {_c_string(target.url)};\n"
        f'        string jsonContent = @"{body}";\n\n'
        "        using var request = new HttpRequestMessage(HttpMethod.Post, url)\n"
        "        {\n"
        '            Content = new StringContent(jsonContent, Encoding.UTF8, "application/json"),\n'
        "        };\n"
        '        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);\n'
        f"{sse}"
        f"{send}"
        "        if (!response.IsSuccessStatusCode)\n"
        "        {\n"
        "            Environment.Exit(1);\n"
        "        }\n"
        "    }\n"
        "}\n"
    )


def _php_code(target: Target) -> str:
    headers = ["'Authorization: Bearer ' . $apiKey", "'Content-Type: application/json'"]
    if target.stream and target.api == "dashscope":
        headers.append("'X-DashScope-SSE: enable'")
    if target.stream:
        transfer = (
            "// Server-sent events, printed as they arrive.\n"
            "curl_setopt($ch, CURLOPT_WRITEFUNCTION, function ($ch, $chunk) {\n"
            "    echo $chunk;\n"
            "    return strlen($chunk);\n"
            "});\n"
        )
        done = ""
    else:
        transfer = "curl_setopt($ch, CURLOPT_RETURNTRANSFER, true);\n"
        done = "echo $response, PHP_EOL;\n"
    return (
        "<?php\n"
        f"$url = {_php(target.url)};\n"
        f"$apiKey = getenv('{target.key_var}');\n"
        "$headers = [\n" + "".join(f"    {h},\n" for h in headers) + "];\n"
        f"$data = {_php(request_body(target))};\n\n"
        "$ch = curl_init();\n"
        "curl_setopt($ch, CURLOPT_URL, $url);\n"
        "curl_setopt($ch, CURLOPT_POST, true);\n"
        "curl_setopt($ch, CURLOPT_POSTFIELDS, json_encode($data));\n"
        "curl_setopt($ch, CURLOPT_HTTPHEADER, $headers);\n"
        f"{transfer}"
        "$response = curl_exec($ch);\n"
        "if ($response === false) {\n"
        "    fwrite(STDERR, 'Curl error: ' . curl_error($ch) . PHP_EOL);\n"
        "    exit(1);\n"
        "}\n"
        "$status = curl_getinfo($ch, CURLINFO_HTTP_CODE);\n"
        "curl_close($ch);\n"
        f"{done}"
        "exit($status === 200 ? 0 : 1);\n"
    )


def _curl(target: Target) -> str:
    lines = [f"curl -sS {'-N ' if target.stream else ''}-X POST {_shell_single(target.url)}"]
    lines.append(f'  -H "Authorization: Bearer ${target.key_var}"')
    lines.append('  -H "Content-Type: application/json"')
    if target.stream and target.api == "dashscope":
        lines.append('  -H "X-DashScope-SSE: enable"')
    lines.append(f"  -d {_shell_single(_json(request_body(target)))}")
    return " \\\n".join(lines) + "\n"


def _python(target: Target) -> str:
    return _python_openai(target) if target.api == "openai" else _python_dashscope(target)


_RENDER: dict[str, Callable[[Target], str]] = {
    "python": _python,
    "curl": _curl,
    "node": _node,
    "java": _java,
    "go": _go,
    "csharp": _csharp,
    "php": _php_code,
}


#: the languages a Responses API snippet is written in
RESPONSES_LANGUAGES = ("python", "curl")


def render(language: str, target: Target) -> Snippet:
    """The snippet for ``language`` (an id or alias) calling ``target``, in the service's pages' style. Pure."""
    lang_id, api = normalize_language(language, target.api)
    lang = LANGUAGES[lang_id]
    api = check_api(api or target.api)
    if api != target.api:
        target = replace(target, api=api)
    style = STYLES[(lang_id, api)]
    if target.responses:
        if lang_id not in RESPONSES_LANGUAGES or api != "openai":
            raise InputError("A Responses API snippet is written in "
                             f"{' and '.join(LANGUAGES[x].label for x in RESPONSES_LANGUAGES)} "
                             f"(openai SDK, OpenAI-compatible endpoint) only, not {lang.label} ({api}).",
                             fix="Pick Python or curl.")
        body = _python_responses(target) if lang_id == "python" else _curl(target)
    else:
        body = _RENDER[lang_id](target)
    header = _header(lang, target, style)
    if lang_id == "php":  # comments go after the opening tag
        code = "<?php\n" + header + body.removeprefix("<?php\n")
    else:
        code = header + body
    code = scrub(code)  # belt and braces: never print a key
    return Snippet(code=code, language=lang_id, api=api, label=f"{lang.label} ({style.library})", fence=lang.fence)


# --------------------------------------------------------------------------- front door


def _adjust_for_model(model: str, params: dict[str, Any], stream: bool) -> tuple[dict[str, Any], bool]:
    """Thinking-only models need streaming; open-source hybrids need thinking off when not streaming."""
    from qwen_nb.catalog import model_info

    info = model_info(model)
    if info is None:
        return params, stream
    if info.thinking == "always":
        return params, True
    if info.stream_only_thinking and not stream:
        if params.get("enable_thinking"):
            return params, True
        if "enable_thinking" not in params:
            return {**params, "enable_thinking": False}, stream
    return params, stream


def _resolve(profile: str | Profile | None, session: Session | None) -> tuple[Profile | None, Region, bool, Any]:
    """(profile, region with the session's base URLs, on_emulator, session) for a snippet."""
    if isinstance(profile, Profile) and session is None and profile.source != "emulator":
        return profile, get_region(profile.region), False, None
    if session is None:
        from qwen_nb._default import default_session

        session = default_session()
    if isinstance(profile, Profile):
        p = profile
        known = {q.name: q for q in session.profiles()}
        if known.get(p.name) == p:
            region = session.region(p.name)
        else:
            regions = getattr(session, "regions", None)  # the session's region table (emulator-aware)
            table = regions() if callable(regions) else None
            region = get_region(p.region, table) if isinstance(table, dict) and table else get_region(p.region)
    else:
        if profile is not None and not isinstance(profile, str):
            raise InputError(f"profile must be a profile name or a Profile, got {type(profile).__name__}.")
        p = session.get_profile(profile)
        region = session.region(p.name)
    on_emu = bool(getattr(session, "on_emulator", False)) and region.host != REGIONS.get(region.id, region).host
    return p, region, on_emu, session


def key_variable(profile: Profile | None) -> str:
    """The variable a profile's key is read from: ``DASHSCOPE_API_KEY`` for the default profile,
    ``QWEN_NB_<NAME>_API_KEY`` for a named one read from the settings chain."""
    if profile is None or profile.name == "default" or profile.source not in ("environment", ".env", "config file"):
        return ENV_VAR
    return f"QWEN_NB_{profile.name.upper().replace('-', '_')}_API_KEY"


def snippet(
    model: str | None = None,
    profile: str | Profile | None = None,
    api: str | None = None,
    language: str | None = None,
    prompt: str | None = None,
    session: Session | None = None,
    *,
    system: str | None = None,
    stream: bool = False,
    emulator: bool = False,
    history: Sequence[Mapping[str, Any]] | None = None,
    responses: bool = False,
    tools: Sequence[str] | None = None,
    previous_response_id: str | None = None,
    **params: Any,
) -> Snippet | SnippetSet:
    """Code that makes the same call as these choices, outside qwen-nb, the way the service's pages write it.

    ``language``: ``python`` (openai or dashscope SDK, by ``api``), ``java`` (the OpenAI Java SDK
    or the DashScope Java SDK), ``node`` (the ``openai`` package, or ``fetch`` on the native
    endpoint), ``go`` (``openai-go``, or ``net/http`` on the native endpoint), ``csharp``,
    ``php``, ``curl`` (HTTP); ``None`` gives all of them (a ``SnippetSet``).
    ``profile``: a name or a ``Profile``; its region (and workspace host) give the URL: the
    service's, also for a session on the local emulator, so that the code works when copied.
    ``emulator=True`` writes the emulator's URL instead (to try the code against it).
    ``params``: temperature, top_p, max_tokens, seed, stop, enable_thinking, thinking_budget.
    The key is never written: a snippet reads it from the environment, from the profile's own
    variable (``DASHSCOPE_API_KEY`` for the default profile, ``QWEN_NB_<NAME>_API_KEY`` for a
    named one).
    ``history``: earlier messages (``{"role": "user" | "assistant", "content": ...}``) sent before
    ``prompt``, so the snippet makes the whole request a multi-turn chat made.
    ``responses=True``: the Responses API call instead (``client.responses.create``, Python and
    curl only), with the built-in ``tools`` named and ``previous_response_id`` when it continues
    an earlier response; the system prompt and history, if any, go in ``input`` as messages.
    """
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise InputError(f"model must be a model name, got {model!r}.", fix='E.g. model="qwen-plus".')
    if prompt is not None and not isinstance(prompt, str):
        raise InputError(f"prompt must be a string, got {type(prompt).__name__}.")
    if system is not None and not isinstance(system, str):
        raise InputError(f"system must be a string, got {type(system).__name__}.")
    if not isinstance(emulator, bool):
        raise InputError(f"emulator must be True or False, got {emulator!r}.")
    if api is not None:
        check_api(api)
    lang_api: str | None = None
    if language is not None:
        language, lang_api = normalize_language(language, api)
    clean = check_params(params)
    if responses:
        if clean:
            raise InputError(f"A Responses API snippet takes no chat parameters, got {sorted(clean)}.",
                             fix="Leave out the parameters, or make a chat snippet (responses=False).")
        if api not in (None, "openai"):
            raise InputError("The Responses API is served on the OpenAI-compatible endpoint only.",
                             fix='Leave api out, or use api="openai".')
        api = "openai"
        for t in tools or ():
            if t not in facts.RESPONSE_TOOLS:
                raise InputError(f"Unknown built-in tool {t!r}.", fix=f"Use: {', '.join(facts.RESPONSE_TOOLS)}.")
    elif tools or previous_response_id:
        raise InputError("tools and previous_response_id are for a Responses API snippet.",
                         fix="Add responses=True.")
    p, region, on_emu, sess = _resolve(profile, session)
    if emulator and not on_emu:
        raise InputError(
            "emulator=True, but this session calls Model Studio, not the local emulator.",
            fix="Drop emulator=True, or use a session on the emulator (qwen_nb.emulator.Emulator().start()).",
        )
    api = api or lang_api or getattr(sess, "default_api", None) or "openai"
    check_api(api)
    model = (model or getattr(sess, "default_model", None) or "qwen-plus").strip()
    if not responses:
        clean, stream = _adjust_for_model(model, clean, bool(stream))
    workspace = p.workspace if p else None
    # the service's hosts for a session on the emulator; a session's own table (a proxy's) otherwise
    service = REGIONS.get(region.id, region) if on_emu else region
    target = Target(
        api=api,
        base_url=(region if emulator else service).base_url(api, workspace),
        model=model,
        prompt=DEFAULT_PROMPT if prompt is None else prompt,
        system=system,
        params=clean,
        stream=stream,
        profile=p.name if p else None,
        region_label=(region if emulator else service).label,
        workspace=workspace,
        service_base_url=service.base_url(api, workspace) if emulator else None,
        key_var=key_variable(p),
        history=_history(history),
        responses=bool(responses),
        tools=tuple(tools or ()),
        previous_response_id=previous_response_id,
    )
    if language is not None:
        return render(language, target)
    return SnippetSet([render(lang, target) for lang in (RESPONSES_LANGUAGES if responses else LANGUAGES)])


def _history(history: Sequence[Mapping[str, Any]] | None) -> tuple[tuple[str, str], ...]:
    """``history`` as (role, content) pairs; an ``InputError`` for anything but user/assistant text messages."""
    out = []
    for i, m in enumerate(history or ()):
        role, content = (m.get("role"), m.get("content")) if isinstance(m, Mapping) else (None, None)
        if role not in ("user", "assistant") or not isinstance(content, str):
            raise InputError(f"history[{i}] must be a user or assistant message with text content, got {m!r}.",
                             fix='E.g. history=[{"role": "user", "content": "Hi"}, '
                             '{"role": "assistant", "content": "Hello!"}].')
        out.append((role, content))
    return tuple(out)


__all__ = [
    "LANGUAGES",
    "RESPONSES_LANGUAGES",
    "STYLES",
    "Snippet",
    "SnippetSet",
    "Style",
    "Target",
    "normalize_language",
    "render",
    "request_body",
    "snippet",
]
