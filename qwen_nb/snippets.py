"""Code snippets: the same call as the current choices, in eight languages, for both endpoints.

Rendering is pure (:func:`render` takes a fully resolved :class:`Target`); only
:func:`snippet` looks at a session to find the profile's region, workspace
gateway and whether it runs on the local emulator. The key is never written
out: every snippet reads it from the environment (the profile's own variable).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qwen_nb import facts
from qwen_nb._profiles import Profile
from qwen_nb._regions import REGIONS, Region, get_region
from qwen_nb._secrets import scrub
from qwen_nb.errors import InputError

if TYPE_CHECKING:
    from qwen_nb.session import Session

ENV_VAR = "DASHSCOPE_API_KEY"
DEFAULT_PROMPT = "Who are you?"
APIS = facts.API_NAMES

COMPATIBLE_CHAT = "/chat/completions"
NATIVE_TEXT = "/services/aigc/text-generation/generation"


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
#: parameters the openai SDK has no argument for: they go in ``extra_body``
_QWEN_EXTRAS = ("enable_thinking", "thinking_budget")


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

    @property
    def url(self) -> str:
        """The full request URL (chat completions or native text generation)."""
        return self.base_url.rstrip("/") + (COMPATIBLE_CHAT if self.api == "openai" else NATIVE_TEXT)


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
    """Keep the parameters a snippet can show; reject unknown names with the list of known ones."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if k not in PARAMS:
            raise InputError(f"Snippets cannot show parameter {k!r}.", fix=f"Use only: {', '.join(PARAMS)}.")
        if v is not None:
            out[k] = v
    return out


# --------------------------------------------------------------------------- request bodies (pure)


def messages(target: Target) -> list[dict[str, str]]:
    """The chat messages of the call."""
    msgs = [{"role": "system", "content": target.system}] if target.system else []
    msgs += [{"role": role, "content": content} for role, content in target.history]
    return msgs + [{"role": "user", "content": target.prompt}]


def request_body(target: Target) -> dict[str, Any]:
    """The JSON body the call sends, on the target's protocol."""
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


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line if line else line for line in text.splitlines())


# --------------------------------------------------------------------------- header comments


def _header(lang: Language, target: Target, tool: str) -> str:
    where = "OpenAI-compatible endpoint" if target.api == "openai" else "DashScope native endpoint"
    lines = [f"{lang.label} · {where} · {tool}"]
    who = f"model {target.model}"
    if target.profile:
        who += f" · profile {target.profile!r}"
    if target.region_label:
        who += f" · {target.region_label}"
    if target.workspace:
        who += f" · workspace {target.workspace} (workspace gateway)"
    lines.append(who)
    lines.append(f"The API key is read from the {target.key_var} environment variable (keys are per region).")
    if target.service_base_url:
        lines.append(
            f"This URL is a local qwen-nb emulator, not Model Studio; on the service: {target.service_base_url}"
        )
    return "\n".join(f"{lang.comment} {line}" for line in lines) + "\n"


# --------------------------------------------------------------------------- renderers (pure)


def _python_openai(target: Target) -> str:
    args = [f"model={_py(target.model)}", f"messages={_py(messages(target), '    ')}"]
    extras = {k: v for k, v in target.params.items() if k in _QWEN_EXTRAS}
    args += [f"{k}={_py(v, '    ')}" for k, v in target.params.items() if k not in _QWEN_EXTRAS]
    if extras:
        args.append(f"extra_body={_py(extras, '    ')}  # Qwen-specific options")
    if target.stream:
        args += ["stream=True", 'stream_options={"include_usage": True}']
    call = "client.chat.completions.create(\n" + "".join(f"    {a},\n" for a in args) + ")\n"
    head = (
        "import os\n\nfrom openai import OpenAI\n\n"
        "client = OpenAI(\n"
        f'    api_key=os.getenv("{target.key_var}"),\n'
        f"    base_url={_py(target.base_url)},\n"
        ")\n"
    )
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


def _python_dashscope(target: Target) -> str:
    args = [
        f'api_key=os.getenv("{target.key_var}")',
        f"base_address={_py(target.base_url)}",
        f"model={_py(target.model)}",
        f"messages={_py(messages(target), '    ')}",
        'result_format="message"',
    ]
    args += [f"{k}={_py(v, '    ')}" for k, v in target.params.items()]
    if target.stream:
        args += ["stream=True", "incremental_output=True"]
    call = "dashscope.Generation.call(\n" + "".join(f"    {a},\n" for a in args) + ")\n"
    head = (
        "import os\n\nimport dashscope\n\n"
        "# base_address sets the region's base URL for this call only;\n"
        "# dashscope.base_http_api_url = ... would set it for the whole process.\n"
    )
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


def _curl(target: Target) -> str:
    lines = [f"curl -sS -X POST {_shell_single(target.url)}"]
    if target.stream:
        lines[0] = f"curl -sS -N -X POST {_shell_single(target.url)}"
    lines.append(f'  -H "Authorization: Bearer ${target.key_var}"')
    lines.append('  -H "Content-Type: application/json"')
    if target.stream and target.api == "dashscope":
        lines.append('  -H "X-DashScope-SSE: enable"')
    lines.append(f"  -d {_shell_single(_json(request_body(target)))}")
    return " \\\n".join(lines) + "\n"


def _node(target: Target) -> str:
    answer = "data.choices[0].message.content" if target.api == "openai" else "data.output.choices[0].message.content"
    if target.stream:
        read = (
            "  // Server-sent events, printed as they arrive.\n"
            "  const decoder = new TextDecoder();\n"
            "  for await (const chunk of response.body) {\n"
            "    process.stdout.write(decoder.decode(chunk, { stream: true }));\n"
            "  }\n"
        )
    else:
        read = f"  const data = await response.json();\n  console.log({answer});\n"
    return (
        f"const url = {_c_string(target.url)};\n"
        f"const body = {_json(request_body(target))};\n\n"
        "async function main() {\n"
        "  const response = await fetch(url, {\n"
        '    method: "POST",\n'
        "    headers: {\n"
        f"      Authorization: `Bearer ${{process.env.{target.key_var}}}`,\n"
        '      "Content-Type": "application/json",\n'
        + ('      "X-DashScope-SSE": "enable",\n' if target.stream and target.api == "dashscope" else "")
        + "    },\n"
        "    body: JSON.stringify(body),\n"
        "  });\n"
        "  if (!response.ok) {\n"
        "    console.error(`HTTP ${response.status}: ${await response.text()}`);\n"
        "    process.exit(1);\n"
        "  }\n" + read + "}\n\n"
        "main();\n"
    )


def _java(target: Target) -> str:
    body = _json(request_body(target)).replace("\\", "\\\\").replace('"""', '""\\"')
    sse = (
        '                .header("X-DashScope-SSE", "enable")\n' if target.stream and target.api == "dashscope" else ""
    )
    if target.stream:
        send = (
            "        HttpResponse<java.util.stream.Stream<String>> response =\n"
            "                HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofLines());\n"
            "        response.body().forEach(System.out::println);\n"
        )
    else:
        send = (
            "        HttpResponse<String> response =\n"
            "                HttpClient.newHttpClient().send(request, HttpResponse.BodyHandlers.ofString());\n"
            "        System.out.println(response.body());\n"
        )
    return (
        "import java.net.URI;\n"
        "import java.net.http.HttpClient;\n"
        "import java.net.http.HttpRequest;\n"
        "import java.net.http.HttpResponse;\n\n"
        "public class Main {\n"
        "    public static void main(String[] args) throws Exception {\n"
        f'        String apiKey = System.getenv("{target.key_var}");\n'
        f"        String url = {_c_string(target.url)};\n"
        '        String body = """\n'
        f"{_indent(body, '            ')}\n"
        '            """;\n'
        "        HttpRequest request = HttpRequest.newBuilder(URI.create(url))\n"
        '                .header("Authorization", "Bearer " + apiKey)\n'
        '                .header("Content-Type", "application/json")\n'
        f"{sse}"
        "                .POST(HttpRequest.BodyPublishers.ofString(body))\n"
        "                .build();\n"
        f"{send}"
        "        if (response.statusCode() != 200) {\n"
        "            System.exit(1);\n"
        "        }\n"
        "    }\n"
        "}\n"
    )


def _go(target: Target) -> str:
    body = _json(request_body(target)).replace("`", "\\u0060")  # a backtick would end the raw string
    sse = '\treq.Header.Set("X-DashScope-SSE", "enable")\n' if target.stream and target.api == "dashscope" else ""
    if target.stream:
        read = "\tif _, err := io.Copy(os.Stdout, resp.Body); err != nil {\n\t\tlog.Fatal(err)\n\t}\n"
    else:
        read = (
            "\tout, err := io.ReadAll(resp.Body)\n"
            "\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n"
            "\tfmt.Println(string(out))\n"
        )
    imports = ["bytes", "io", "log", "net/http", "os"] + ([] if target.stream else ["fmt"])
    return (
        "package main\n\n"
        "import (\n" + "".join(f'\t"{i}"\n' for i in sorted(imports)) + ")\n\n"
        "func main() {\n"
        f"\turl := {_c_string(target.url)}\n"
        f"\tbody := []byte(`{body}`)\n\n"
        '\treq, err := http.NewRequest("POST", url, bytes.NewReader(body))\n'
        "\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n"
        f'\treq.Header.Set("Authorization", "Bearer "+os.Getenv("{target.key_var}"))\n'
        '\treq.Header.Set("Content-Type", "application/json")\n'
        f"{sse}"
        "\tresp, err := http.DefaultClient.Do(req)\n"
        "\tif err != nil {\n\t\tlog.Fatal(err)\n\t}\n"
        "\tdefer resp.Body.Close()\n"
        f"{read}"
        "\tif resp.StatusCode != http.StatusOK {\n\t\tos.Exit(1)\n\t}\n"
        "}\n"
    )


def _csharp(target: Target) -> str:
    body = _json(request_body(target)).replace('"', '""')
    sse = (
        '    request.Headers.Add("X-DashScope-SSE", "enable");\n' if target.stream and target.api == "dashscope" else ""
    )
    if target.stream:
        send = (
            "using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);\n"
            "using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());\n"
            "while (await reader.ReadLineAsync() is string line)\n"
            "{\n"
            "    Console.WriteLine(line);\n"
            "}\n"
        )
    else:
        send = (
            "using var response = await http.SendAsync(request);\n"
            "Console.WriteLine(await response.Content.ReadAsStringAsync());\n"
        )
    return (
        "using System.Net.Http.Headers;\n"
        "using System.Text;\n\n"
        f'var apiKey = Environment.GetEnvironmentVariable("{target.key_var}");\n'
        f"var url = {_c_string(target.url)};\n"
        f'var body = @"{body}";\n\n'
        "using var http = new HttpClient();\n"
        "using var request = new HttpRequestMessage(HttpMethod.Post, url)\n"
        "{\n"
        '    Content = new StringContent(body, Encoding.UTF8, "application/json"),\n'
        "};\n"
        'request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);\n'
        f"{sse.lstrip()}"
        f"{send}"
        "if (!response.IsSuccessStatusCode)\n"
        "{\n"
        "    Environment.Exit(1);\n"
        "}\n"
    )


def _php_code(target: Target) -> str:
    headers = ["'Authorization: Bearer ' . $apiKey", "'Content-Type: application/json'"]
    if target.stream and target.api == "dashscope":
        headers.append("'X-DashScope-SSE: enable'")
    if target.stream:
        transfer = (
            "    // Server-sent events, printed as they arrive.\n"
            "    CURLOPT_WRITEFUNCTION => function ($ch, $chunk) {\n"
            "        echo $chunk;\n"
            "        return strlen($chunk);\n"
            "    },\n"
        )
        done = "curl_close($ch);\n"
    else:
        transfer = "    CURLOPT_RETURNTRANSFER => true,\n"
        done = "curl_close($ch);\necho $response, PHP_EOL;\n"
    return (
        "<?php\n"
        f"$url = {_php(target.url)};\n"
        f"$apiKey = getenv('{target.key_var}');\n"
        f"$body = {_php(request_body(target))};\n\n"
        "$ch = curl_init($url);\n"
        "curl_setopt_array($ch, [\n"
        "    CURLOPT_POST => true,\n"
        "    CURLOPT_HTTPHEADER => [\n" + "".join(f"        {h},\n" for h in headers) + "    ],\n"
        "    CURLOPT_POSTFIELDS => json_encode($body),\n"
        f"{transfer}"
        "]);\n"
        "$response = curl_exec($ch);\n"
        "if ($response === false) {\n"
        "    fwrite(STDERR, 'curl error: ' . curl_error($ch) . PHP_EOL);\n"
        "    exit(1);\n"
        "}\n"
        "$status = curl_getinfo($ch, CURLINFO_HTTP_CODE);\n"
        f"{done}"
        "exit($status === 200 ? 0 : 1);\n"
    )


_TOOLS = {
    ("python", "openai"): "pip install openai",
    ("python", "dashscope"): "pip install dashscope",
    ("curl", "openai"): "any shell with curl",
    ("curl", "dashscope"): "any shell with curl",
    ("node", "openai"): "Node.js 18+ (built-in fetch), no packages",
    ("node", "dashscope"): "Node.js 18+ (built-in fetch), no packages",
    ("java", "openai"): "Java 15+, JDK only; save as Main.java, run: java Main.java",
    ("java", "dashscope"): "Java 15+, JDK only; save as Main.java, run: java Main.java",
    ("go", "openai"): "Go standard library; run: go run main.go",
    ("go", "dashscope"): "Go standard library; run: go run main.go",
    ("csharp", "openai"): ".NET 6+ top-level program; run: dotnet run",
    ("csharp", "dashscope"): ".NET 6+ top-level program; run: dotnet run",
    ("php", "openai"): "PHP with the curl extension",
    ("php", "dashscope"): "PHP with the curl extension",
}
_RENDER = {
    "curl": _curl,
    "node": _node,
    "java": _java,
    "go": _go,
    "csharp": _csharp,
    "php": _php_code,
}


def render(language: str, target: Target) -> Snippet:
    """The snippet for ``language`` (an id or alias) calling ``target``. Pure."""
    lang_id, api = normalize_language(language, target.api)
    lang = LANGUAGES[lang_id]
    api = check_api(api or target.api)
    if api != target.api:
        target = Target(**{**target.__dict__, "api": api})
    if lang_id == "python":
        body = _python_openai(target) if api == "openai" else _python_dashscope(target)
    else:
        body = _RENDER[lang_id](target)
    header = _header(lang, target, _TOOLS[(lang_id, api)])
    if lang_id == "php":  # comments go after the opening tag
        code = "<?php\n" + header + body.removeprefix("<?php\n")
    else:
        code = header + body
    code = scrub(code)  # belt and braces: never print a key
    sdk = {"openai": "openai SDK", "dashscope": "dashscope SDK"}[api] if lang_id == "python" else None
    endpoint = "OpenAI-compatible" if api == "openai" else "DashScope native"
    label = f"{lang.label} ({sdk})" if sdk else f"{lang.label} ({endpoint})"
    return Snippet(code=code, language=lang_id, api=api, label=label, fence=lang.fence)


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
    history: Sequence[Mapping[str, Any]] | None = None,
    **params: Any,
) -> Snippet | SnippetSet:
    """Code that makes the same call as these choices, outside qwen-nb.

    ``language``: ``python`` (openai or dashscope SDK, by ``api``), ``curl``, ``node``,
    ``java``, ``go``, ``csharp``, ``php``; ``None`` gives all of them (a ``SnippetSet``).
    ``profile``: a name or a ``Profile``; its region (and workspace gateway) give the base URL.
    ``params``: temperature, top_p, max_tokens, seed, stop, enable_thinking, thinking_budget.
    The key is never written: a snippet reads it from the environment, from the profile's own
    variable (``DASHSCOPE_API_KEY`` for the default profile, ``QWEN_NB_<NAME>_API_KEY`` for a
    named one).
    ``history``: earlier messages (``{"role": "user" | "assistant", "content": ...}``) sent before
    ``prompt``, so the snippet makes the whole request a multi-turn chat made.
    """
    if model is not None and (not isinstance(model, str) or not model.strip()):
        raise InputError(f"model must be a model name, got {model!r}.", fix='E.g. model="qwen-plus".')
    if prompt is not None and not isinstance(prompt, str):
        raise InputError(f"prompt must be a string, got {type(prompt).__name__}.")
    if api is not None:
        check_api(api)
    lang_api: str | None = None
    if language is not None:
        language, lang_api = normalize_language(language, api)
    clean = check_params(params)
    p, region, on_emu, sess = _resolve(profile, session)
    api = api or lang_api or getattr(sess, "default_api", None) or "openai"
    check_api(api)
    model = (model or getattr(sess, "default_model", None) or "qwen-plus").strip()
    clean, stream = _adjust_for_model(model, clean, bool(stream))
    workspace = p.workspace if p else None
    service = REGIONS.get(region.id, region).base_url(api, workspace) if on_emu else None
    target = Target(
        api=api,
        base_url=region.base_url(api, workspace),
        model=model,
        prompt=DEFAULT_PROMPT if prompt is None else prompt,
        system=system,
        params=clean,
        stream=stream,
        profile=p.name if p else None,
        region_label=region.label,
        workspace=workspace,
        service_base_url=service,
        key_var=key_variable(p),
        history=_history(history),
    )
    if language is not None:
        return render(language, target)
    return SnippetSet([render(lang, target) for lang in LANGUAGES])


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


__all__ = ["LANGUAGES", "Snippet", "SnippetSet", "Target", "render", "request_body", "snippet"]
