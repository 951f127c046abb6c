"""Snippets: pure rendering checks, then the snippets run for real against the emulator with the pages' SDKs.

The Node.js snippets run with the ``openai`` npm package and the Java snippets with the OpenAI
and DashScope Java SDKs, installed once per machine from tests/snippet_env/ (npm into .cache/,
Maven into ~/.m2). Where a toolchain or its registry is missing the test is skipped and says why.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from qwen_nb import facts
from qwen_nb._profiles import Profile
from qwen_nb.errors import InputError
from qwen_nb.snippets import LANGUAGES, STYLES, Snippet, SnippetSet, Target, render, request_body, snippet

KEY = "sk-abcdefghijklmnop1234"
TRICKY = 'It\'s "quoted" \\ `tick` $HOME ${x} {{braces}} """ \n second line\t中文 ü'
BOTH = ("openai", "dashscope")
URL_READ = {
    "python": 'os.getenv("DASHSCOPE_API_KEY")',
    "curl": "$DASHSCOPE_API_KEY",
    "node": "process.env.DASHSCOPE_API_KEY",
    "java": 'System.getenv("DASHSCOPE_API_KEY")',
    "go": 'os.Getenv("DASHSCOPE_API_KEY")',
    "csharp": 'Environment.GetEnvironmentVariable("DASHSCOPE_API_KEY")',
    "php": "getenv('DASHSCOPE_API_KEY')",
}
ROOT = Path(__file__).resolve().parents[1]
SNIPPET_ENV = ROOT / "tests" / "snippet_env"
CACHE = ROOT / ".cache" / "snippet-env"
SG = "https://dashscope-intl.aliyuncs.com"


def target(api: str = "openai", **kw) -> Target:
    base = SG + ("/compatible-mode/v1" if api == "openai" else "/api/v1")
    return Target(**{"api": api, "base_url": base, "model": "qwen-plus", **kw})


def body_of(code: str, lang: str) -> str:
    """The code under a snippet's header comment (and PHP's opening tag)."""
    comment = LANGUAGES[lang].comment
    lines = code.splitlines(keepends=True)
    start = 1 if lang == "php" else 0
    while start < len(lines) and lines[start].startswith(comment):
        start += 1
    return "".join(lines[start:])


# ----------------------------------------------------------------------------- pure


@pytest.mark.parametrize("api", BOTH)
@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_every_language_names_url_model_and_env_key(lang: str, api: str) -> None:
    t = target(api, prompt="Who are you?", profile="team-a", region_label="Singapore")
    s = render(lang, t)
    assert isinstance(s, Snippet) and s.language == lang and s.api == api
    path = "/compatible-mode/v1" if api == "openai" else "/api/v1"
    if STYLES[(lang, api)].library != "HTTP":  # SDKs take the base URL and add the path themselves
        assert f"dashscope-intl.aliyuncs.com{path}" in body_of(s.code, lang)
    else:
        assert t.url in body_of(s.code, lang)
    assert t.url in s.code  # the header names the endpoint either way
    assert t.url.endswith("/chat/completions" if api == "openai" else "/services/aigc/text-generation/generation")
    assert '"qwen-plus"' in s.code or "'qwen-plus'" in s.code
    assert URL_READ[lang] in s.code
    assert "sk-" not in s.code
    assert s._repr_markdown_().startswith("```" + LANGUAGES[lang].fence + "\n")
    assert s._repr_markdown_().rstrip().endswith("```")
    assert "<pre><code" in s._repr_html_()


def test_each_language_uses_the_library_the_service_pages_use() -> None:
    """The pages: openai SDKs for Python/Java/Node.js/Go, dashscope SDKs for Python/Java, HTTP elsewhere."""
    sdk = {
        ("python", "openai"): "from openai import OpenAI",
        ("python", "dashscope"): "dashscope.Generation.call(",
        ("java", "openai"): "import com.openai.client.okhttp.OpenAIOkHttpClient;",
        ("java", "dashscope"): "import com.alibaba.dashscope.aigc.generation.Generation;",
        ("node", "openai"): 'import OpenAI from "openai";',
        ("node", "dashscope"): "await fetch(url,",
        ("go", "openai"): '"github.com/openai/openai-go/v3"',
        ("go", "dashscope"): '"net/http"',
        ("csharp", "openai"): "new HttpRequestMessage(HttpMethod.Post, url)",
        ("csharp", "dashscope"): "new HttpRequestMessage(HttpMethod.Post, url)",
        ("php", "openai"): "curl_init()",
        ("php", "dashscope"): "curl_init()",
        ("curl", "openai"): "curl -sS -X POST",
        ("curl", "dashscope"): "curl -sS -X POST",
    }
    assert set(sdk) == set(STYLES)
    for (lang, api), marker in sdk.items():
        s = render(lang, target(api))
        assert marker in s.code, (lang, api)
        assert s.label == f"{LANGUAGES[lang].label} ({STYLES[(lang, api)].library})"
    assert "import com.openai" not in render("java", target("dashscope")).code
    assert "openai" not in body_of(render("node", target("dashscope")).code, "node")


@pytest.mark.parametrize("api", BOTH)
def test_python_snippets_parse_and_carry_the_exact_prompt(api: str) -> None:
    t = target(api, prompt=TRICKY, system="Be brief.", params={"temperature": 0.2, "enable_thinking": False})
    code = render("python", t).code
    tree = ast.parse(code)
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert TRICKY in strings and "Be brief." in strings
    if api == "openai":
        assert "from openai import OpenAI" in code and 'extra_body={"enable_thinking": False}' in code
        assert "temperature=0.2" in code
    else:
        assert "dashscope.Generation.call(" in code and 'dashscope.base_http_api_url = "' in code
        assert 'result_format="message"' in code and "enable_thinking=False" in code
    # Qwen's own options next to streaming arguments stay valid Python
    ast.parse(render("python", target(api, params={"enable_thinking": True, "thinking_budget": 50}, stream=True)).code)


@pytest.mark.parametrize("api", BOTH)
def test_curl_payload_is_the_request_body(api: str) -> None:
    t = target(api, prompt=TRICKY, params={"max_tokens": 5, "stop": ["\n"]})
    code = render("curl", t).code
    command = [line for line in code.splitlines() if not line.startswith("#")]
    argv = shlex.split("\n".join(command).replace("\\\n", " "))
    assert argv[0] == "curl" and t.url in argv
    assert json.loads(argv[argv.index("-d") + 1]) == request_body(t)
    assert "Authorization: Bearer $DASHSCOPE_API_KEY" in argv


def test_request_bodies_follow_each_protocol() -> None:
    o = request_body(target("openai", params={"seed": 1}, stream=True))
    assert o["messages"][-1] == {"role": "user", "content": "Who are you?"} and o["seed"] == 1
    assert o["stream"] is True and o["stream_options"] == {"include_usage": True}
    d = request_body(target("dashscope", params={"seed": 1}, stream=True, system="S"))
    assert d["input"]["messages"][0] == {"role": "system", "content": "S"}
    assert d["parameters"] == {"result_format": "message", "seed": 1, "incremental_output": True}


@pytest.mark.parametrize("api", BOTH)
def test_http_bodies_decode_to_the_request_body(api: str) -> None:
    t = target(api, prompt=TRICKY)
    want = request_body(t)
    cs = render("csharp", t).code
    verbatim = re.search(r'string jsonContent = @"(.*?)";\n', cs, re.S).group(1)
    assert json.loads(verbatim.replace('""', '"')) == want and "class Program" in cs
    php = render("php", t).code
    assert php.startswith("<?php\n") and "json_encode($data)" in php and "'It\\'s" not in php  # tricky -> "..."
    assert php.count("[") == php.count("]")
    node = body_of(render("node", t).code, "node")
    assert TRICKY.replace("\n", "\\n").replace("\t", "\\t") in node.replace('\\"', '"').replace("\\\\", "\\")
    if api == "dashscope":  # Go calls the native endpoint over net/http with the JSON body
        go = render("go", t).code
        raw = re.search(r"body := \[\]byte\(`(.*?)`\)", go, re.S).group(1)
        assert json.loads(raw) == want and "package main" in go and go.count("{") == go.count("}")


def _string_args(code: str, call: str) -> list[str]:
    """The string literals passed to ``call(...)`` in Java/Go code, decoded (their escapes are JSON's)."""
    return [json.loads(m) for m in re.findall(re.escape(call) + r'\(("(?:[^"\\]|\\.)*")\)', code)]


@pytest.mark.parametrize("api", BOTH)
def test_sdk_snippets_carry_the_exact_prompt_and_parameters(api: str) -> None:
    params = {"temperature": 0.2, "top_p": 0.8, "max_tokens": 5, "seed": 7, "stop": ["\n", "END"],
              "enable_thinking": False, "thinking_budget": 50}
    t = target(api, prompt=TRICKY, system="Be brief.", params=params)
    java = render("java", t).code
    if api == "openai":
        assert _string_args(java, ".addUserMessage") == [TRICKY]
        assert _string_args(java, ".addSystemMessage") == ["Be brief."]
        for piece in (".temperature(0.2)", ".topP(0.8)", ".maxTokens(5L)", ".seed(7L)",
                      '.stopOfStrings(List.of("\\n", "END"))',
                      '.putAdditionalBodyProperty("enable_thinking", JsonValue.from(false))',
                      '.putAdditionalBodyProperty("thinking_budget", JsonValue.from(50))'):
            assert piece in java, piece
        go = re.sub(r"(\w:) +", r"\1 ", render("go", t).code)  # fields are aligned as gofmt does
        assert _string_args(go, "openai.UserMessage") == [TRICKY]
        for piece in ("Temperature: openai.Float(0.2)", "MaxTokens: openai.Int(5)", "Seed: openai.Int(7)",
                      'OfStringArray: []string{"\\n", "END"}', 'option.WithJSONSet("enable_thinking", false)',
                      'option.WithBaseURL("https://dashscope-intl.aliyuncs.com/compatible-mode/v1/")'):
            assert piece in go, piece
        node = render("node", t).code
        assert "enable_thinking: false," in node and "thinking_budget: 50," in node and "top_p: 0.8," in node
    else:
        assert _string_args(java, ".content") == ["Be brief.", TRICKY]
        for piece in (".temperature(0.2f)", ".topP(0.8)", ".maxTokens(5)", ".seed(7)",
                      '.stopStrings(Arrays.asList("\\n", "END"))', ".enableThinking(false)", ".thinkingBudget(50)",
                      'new Generation(Protocol.HTTP.getValue(), "https://dashscope-intl.aliyuncs.com/api/v1")'):
            assert piece in java, piece


def test_beijing_needs_no_base_url_in_the_dashscope_sdks() -> None:
    """The pages: "You do not need to configure the base_url for SDK calls" in Beijing (native endpoint)."""
    bj = Profile("bj", region="cn-beijing", key=KEY)
    py = snippet(profile=bj, language="python", api="dashscope").code
    assert "base_http_api_url" not in py and "sets no base URL" in py
    java = snippet(profile=bj, language="java", api="dashscope").code
    assert "new Generation();" in java and "Protocol" not in java
    assert "https://dashscope.aliyuncs.com/api/v1/services/aigc/text-generation/generation" in java  # header
    # the OpenAI SDKs always need one, and a Beijing workspace host is not the SDK's default either
    assert 'base_url="https://dashscope.aliyuncs.com/compatible-mode/v1"' in snippet(
        profile=bj, language="python", api="openai").code
    lab = Profile("lab", region="cn-beijing", key=KEY, workspace="llm-lab1")
    ws = snippet(profile=lab, language="java", api="dashscope").code
    assert '"https://llm-lab1.cn-beijing.maas.aliyuncs.com/api/v1"' in ws and "a key of workspace llm-lab1" in ws
    assert facts.WORKSPACE_HOST.format(workspace="llm-lab1", region="cn-beijing") in snippet(
        profile=lab, language="node", api="openai").code


def test_node_snippet_passes_node_check(tmp_path: Path) -> None:
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    for api in BOTH:
        for stream in (False, True):
            f = tmp_path / f"s_{api}_{stream}.mjs"
            f.write_text(render("node", target(api, prompt=TRICKY, stream=stream)).code, encoding="utf-8")
            subprocess.run([node, "--check", str(f)], check=True, capture_output=True, timeout=30)


def test_java_snippets_parse(tmp_path: Path) -> None:
    """javac parses every Java snippet; without the SDK jars only their imports may fail (the run test uses them)."""
    javac = shutil.which("javac")
    if not javac:
        pytest.skip("javac is not installed")
    files = []
    for i, (api, stream) in enumerate([(a, s) for a in BOTH for s in (False, True)]):
        params = {"stop": ["x"], "enable_thinking": True} if stream else {"temperature": 1, "stop": "x"}
        d = tmp_path / f"s{i}"
        d.mkdir()
        code = render("java", target(api, prompt=TRICKY, system="S", stream=stream, params=params)).code
        (d / "Main.java").write_text(f"package s{i};\n" + code, encoding="utf-8")
        files.append(str(d / "Main.java"))
    r = subprocess.run([javac, "-encoding", "UTF-8", "-d", str(tmp_path / "out"), *files],
                       capture_output=True, text=True, timeout=180)
    sdk_names = {m.split(".")[-1] for f in files for m in re.findall(r"^import ((?:com|io)\.[\w.]+);",
                                                                    Path(f).read_text(), re.M)}
    lines = r.stderr.splitlines()
    for i, line in enumerate(lines):
        if ": error: " not in line or re.search(r"error: package [\w.]+ does not exist", line):
            continue
        # only a name from the SDKs may be unknown; anything else is a mistake in the snippet
        assert "cannot find symbol" in line, r.stderr
        symbol = next(x for x in lines[i + 1:] if "symbol:" in x).split()[-1]
        assert symbol in sdk_names, (symbol, r.stderr)


@pytest.mark.parametrize("tool", ["php", "go", "dotnet"])
def test_other_toolchains_when_present(tool: str, tmp_path: Path) -> None:
    exe = shutil.which(tool)
    if not exe:
        pytest.skip(f"{tool} is not installed on this machine; the snippet is checked textually above")
    if tool == "php":
        for api in BOTH:
            f = tmp_path / f"{api}.php"
            f.write_text(render("php", target(api, prompt=TRICKY)).code, encoding="utf-8")
            subprocess.run([exe, "-l", str(f)], check=True, capture_output=True, timeout=60)
    elif tool == "go":  # the native snippet uses the standard library only; openai-go needs the module proxy
        f = tmp_path / "main.go"
        f.write_text(render("go", target("dashscope", prompt=TRICKY)).code, encoding="utf-8")
        subprocess.run([exe, "vet", str(f)], check=True, capture_output=True, timeout=120)
    else:
        pytest.skip("compiling C# needs a project; checked textually above")


def test_snippet_for_a_profile_object_uses_its_region_and_workspace_gateway() -> None:
    p = Profile("lab", region="cn-beijing", key=KEY, workspace="llm-lab1")
    s = snippet(profile=p, language="curl", api="dashscope")
    assert "https://llm-lab1.cn-beijing.maas.aliyuncs.com/api/v1/services/aigc/text-generation/generation" in s.code
    assert "workspace llm-lab1" in s.code and "profile 'lab'" in s.code
    plain = snippet(profile=Profile("sg", key=KEY), language="python", api="openai", model="qwen-max")
    assert 'base_url="https://dashscope-intl.aliyuncs.com/compatible-mode/v1"' in plain.code
    assert 'model="qwen-max"' in plain.code
    for code in (s.code, plain.code):
        assert KEY not in code and KEY[-4:] not in code


def test_snippet_set_has_every_language_under_a_heading() -> None:
    p = Profile("sg", key=KEY)
    all_ = snippet(profile=p, api="dashscope")
    assert isinstance(all_, SnippetSet) and all_.languages == list(LANGUAGES)
    md = all_._repr_markdown_()
    for s in all_:
        assert f"#### {s.label}" in md and s.api == "dashscope"
    assert all_["c#"].language == "csharp" and all_["js"].language == "node"
    assert KEY not in md and KEY not in all_._repr_html_()


def test_language_names_and_aliases() -> None:
    p = Profile("sg", key=KEY)
    assert snippet(profile=p, language="python-dashscope").api == "dashscope"
    assert snippet(profile=p, language="Python (openai)").api == "openai"
    assert snippet(profile=p, language="golang").language == "go"
    assert snippet(profile=p, language="bash", api="dashscope").language == "curl"
    assert snippet(profile=p, language="java-native").api == "dashscope"


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"language": "cobol"}, ["cobol", "python", "curl"]),
        ({"api": "grpc"}, ["grpc", "openai", "dashscope"]),
        ({"language": "python-dashscope", "api": "openai"}, ["implies"]),
        ({"frequency": 1}, ["frequency", "temperature"]),
        ({"model": ""}, ["model"]),
        ({"prompt": 3}, ["prompt"]),
        ({"temperature": "hot"}, ["temperature", "number"]),
        ({"max_tokens": 2.5}, ["max_tokens", "integer"]),
        ({"stop": 3}, ["stop", "string"]),
        ({"emulator": True}, ["emulator", "Model Studio"]),
    ],
)
def test_bad_input_is_a_clear_input_error(kwargs: dict, words: list[str]) -> None:
    with pytest.raises(InputError) as e:
        snippet(profile=Profile("sg", key=KEY), **kwargs)
    for w in words:
        assert w in str(e.value)


def test_thinking_only_and_open_source_models_get_a_call_that_works() -> None:
    p = Profile("sg", key=KEY)
    qwq = snippet(profile=p, language="python", model="qwq-plus")
    assert "stream=True" in qwq.code
    oss = snippet(profile=p, language="curl", model="qwen3-32b")
    assert '"enable_thinking": false' in oss.code
    think = snippet(profile=p, language="python", model="qwen3-32b", enable_thinking=True)
    assert "stream=True" in think.code
    ast.parse(think.code)


def test_a_key_pasted_into_a_prompt_is_masked() -> None:
    s = snippet(profile=Profile("sg", key=KEY), language="node", prompt=f"my key is {KEY}")
    assert KEY not in s.code and "sk-…1234" in s.code


# ----------------------------------------------------------------------------- the service's URLs on the emulator


def test_snippets_recorded_on_the_emulator_carry_the_services_urls(session, emu) -> None:
    """What a notebook records on the emulator runs when copied: the service's hosts, never 127.0.0.1."""
    for api in BOTH:
        for s in snippet(session=session, api=api):
            assert emu.url not in s.code and "127.0.0.1" not in s.code and "emulator" not in s.code.lower()
            assert SG in s.code
    team = snippet(profile="team-a", session=session, language="python")
    ws = emu.profiles()["team-a"].workspace
    assert f"https://{ws}.ap-southeast-1.maas.aliyuncs.com/compatible-mode/v1" in team.code
    bj = snippet(profile="beijing", session=session, language="python", api="dashscope")
    assert "base_http_api_url" not in bj.code  # Beijing: the SDK's default
    everything = snippet(session=session)._repr_markdown_() + snippet(session=session, api="dashscope")._repr_html_()
    for p in emu.profiles().values():
        assert p.key not in everything


def test_emulator_snippets_point_at_it_only_when_asked_and_say_so(session, emu) -> None:
    s = snippet(language="curl", session=session, api="openai", emulator=True)
    assert emu.url in s.code and "emulator" in s.code.lower()
    assert f"{SG}/compatible-mode/v1" in s.code  # what to use on the service


@pytest.mark.parametrize("api", BOTH)
def test_emulator_snippets_differ_from_the_services_only_in_the_url(session, emu, api: str) -> None:
    """So running the emulator's variant tests the code a reader copies."""
    for profile in ("default", "team-b", "beijing"):
        ws = emu.profiles()[profile].workspace
        here = emu.regions()[emu.profiles()[profile].region].base_url(api, ws)
        there = snippet(session=session, profile=profile, api=api, language="curl").code
        real = re.search(r"https://[\w.-]+\.aliyuncs\.com[\w/-]*?(/compatible-mode/v1|/api/v1)", body_of(there, "curl"))
        for lang in LANGUAGES:
            mine = snippet(session=session, profile=profile, api=api, language=lang, emulator=True).code
            theirs = snippet(session=session, profile=profile, api=api, language=lang).code
            a, b = body_of(mine, lang), body_of(theirs, lang)
            if profile == "beijing" and api == "dashscope" and lang in ("python", "java"):
                assert here in a and "dashscope.aliyuncs.com" not in b  # the SDK default needs no URL
                continue
            assert a == b.replace(real.group(0), here), (profile, lang)


# ----------------------------------------------------------------------------- against the emulator


def _demo_key(emu) -> str:
    return emu.profiles()["default"].key


def _env(key: str, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DASHSCOPE_", "QWEN_NB_", "OPENAI_"))}
    env.pop("HTTP_PROXY", None)
    env.pop("HTTPS_PROXY", None)
    return {**env, "DASHSCOPE_API_KEY": key, "NO_PROXY": "127.0.0.1,localhost", **more}


def _run(argv: list[str], emu, cwd: Path, timeout: int = 60, key: str | None = None,
         **more: str) -> subprocess.CompletedProcess:
    env = _env(key or _demo_key(emu), **more)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("api", BOTH)
@pytest.mark.parametrize("stream", [False, True])
def test_python_snippets_run_against_the_emulator(session, emu, tmp_path: Path, api: str, stream: bool) -> None:
    code = snippet(language="python", api=api, session=session, stream=stream, emulator=True).code
    (tmp_path / "s.py").write_text(code, encoding="utf-8")
    r = _run([sys.executable, "s.py"], emu, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("I am Qwen"), r.stdout


def test_python_snippet_for_a_sub_workspace_runs_on_the_emulator_gateway(session, emu, tmp_path: Path) -> None:
    ws = [p for p in emu.profiles().values() if p.workspace]
    if not ws:
        pytest.skip("emulator has no sub-workspace profile")
    p = ws[0]
    code = snippet(language="python-openai", profile=p.name, session=session, model=(p.models or ["qwen-plus"])[0],
                   emulator=True).code
    assert f"/ws/{p.workspace}/" in code
    (tmp_path / "s.py").write_text(code, encoding="utf-8")
    r = _run([sys.executable, "s.py"], emu, tmp_path, key=p.key)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()


def test_beijing_python_snippet_without_a_base_url_runs_where_the_sdk_points(session, emu, tmp_path: Path) -> None:
    """The snippet as recorded (no base URL); the SDK's own variable points it at the emulator's Beijing."""
    code = snippet(language="python", api="dashscope", profile="beijing", session=session).code
    assert "base_http_api_url" not in code
    (tmp_path / "s.py").write_text(code, encoding="utf-8")
    base = emu.regions()["cn-beijing"].native_base()
    r = _run([sys.executable, "s.py"], emu, tmp_path, key=emu.profiles()["beijing"].key, DASHSCOPE_HTTP_BASE_URL=base)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("I am Qwen"), r.stdout


def sse_text(out: str, api: str) -> str:
    """The answer assembled from a raw server-sent-event stream, on either protocol."""
    text = ""
    for line in out.splitlines():
        if not line.startswith("data:") or line.strip() == "data: [DONE]":
            continue
        data = json.loads(line[5:])
        if api == "openai":
            text += "".join(c["delta"].get("content") or "" for c in data.get("choices", []))
        else:
            text += "".join(c["message"].get("content") or "" for c in data["output"]["choices"])
    return text


def answer_of(out: str, api: str, stream: bool) -> str:
    if stream:
        return sse_text(out, api)
    data = json.loads(out)
    return (
        data["choices"][0]["message"]["content"]
        if api == "openai"
        else data["output"]["choices"][0]["message"]["content"]
    )


@pytest.mark.parametrize("api", BOTH)
@pytest.mark.parametrize("stream", [False, True])
def test_curl_snippets_run_against_the_emulator(session, emu, tmp_path: Path, api: str, stream: bool) -> None:
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    code = snippet(language="curl", api=api, session=session, stream=stream, emulator=True).code
    (tmp_path / "s.sh").write_text(code, encoding="utf-8")
    r = _run(["bash", "s.sh"], emu, tmp_path)
    assert r.returncode == 0, r.stderr
    assert answer_of(r.stdout, api, stream).startswith("I am Qwen")


# ----------------------------------------------------------------------------- Node.js: openai from npm


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One installer at a time (parallel test sessions share the cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _digest(*files: Path) -> str:
    return hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()[:16]


def _first_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if re.search(r"ERR|error|Unknown host", line)]
    return (lines or [text.strip()[-300:]])[0][:300]


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """node_modules with the ``openai`` package pinned in tests/snippet_env/node, installed once into .cache/."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm is not installed: the Node.js SDK snippets cannot run here")
    src = SNIPPET_ENV / "node"
    dest = CACHE / "node"
    stamp = dest / ".installed"
    want = _digest(src / "package.json", src / "package-lock.json")
    with _locked(CACHE / "node.lock"):
        if not (stamp.exists() and stamp.read_text() == want and (dest / "node_modules" / "openai").is_dir()):
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            for name in ("package.json", "package-lock.json"):
                shutil.copy(src / name, dest / name)
            t0 = time.monotonic()
            r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--prefer-offline"], cwd=dest,
                               capture_output=True, text=True, timeout=600)
            if r.returncode != 0:
                pytest.skip(f"npm could not install the openai package (is the npm registry reachable?): "
                            f"{_first_error(r.stderr)}")
            stamp.write_text(want)
            (dest / ".install-seconds").write_text(f"{time.monotonic() - t0:.1f}\n")
    return dest / "node_modules"


def _node_project(tmp_path: Path, modules: Path) -> Path:
    """A folder where ``import OpenAI from "openai"`` resolves (ES modules ignore NODE_PATH)."""
    (tmp_path / "node_modules").symlink_to(modules, target_is_directory=True)
    return tmp_path


@pytest.mark.parametrize("api", BOTH)
@pytest.mark.parametrize("stream", [False, True])
def test_node_snippets_run_against_the_emulator(session, emu, tmp_path: Path, api: str, stream: bool,
                                                request) -> None:
    if not shutil.which("node"):
        pytest.skip("node is not installed")
    if api == "openai":  # the openai npm package, as the pages use; the native endpoint uses plain fetch
        _node_project(tmp_path, request.getfixturevalue("node_modules"))
    code = snippet(language="node", api=api, session=session, stream=stream, emulator=True).code
    (tmp_path / "main.mjs").write_text(code, encoding="utf-8")
    r = _run(["node", "main.mjs"], emu, tmp_path)
    assert r.returncode == 0, r.stderr
    out = sse_text(r.stdout, api) if stream and api == "dashscope" else r.stdout
    assert out.startswith("I am Qwen"), r.stdout


def test_node_snippet_for_a_sub_workspace_runs_with_the_sdk(session, emu, tmp_path: Path, node_modules) -> None:
    p = emu.profiles()["team-a"]
    code = snippet(language="node", api="openai", profile="team-a", session=session, model=p.models[0],
                   temperature=0.5, max_tokens=64, stop=["\n\n"], enable_thinking=False, emulator=True).code
    _node_project(tmp_path, node_modules)
    (tmp_path / "main.mjs").write_text(code, encoding="utf-8")
    r = _run(["node", "main.mjs"], emu, tmp_path, key=p.key)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()


# ----------------------------------------------------------------------------- Java: the OpenAI and DashScope SDKs


MAVEN_HOST = "repo.maven.apache.org"


def _jar(m2: Path, group: str, artifact: str, version: str) -> Path:
    return m2 / Path(*group.split(".")) / artifact / version / f"{artifact}-{version}.jar"


@pytest.fixture(scope="session")
def java_classpath() -> str:
    """The classpath of the SDKs in tests/snippet_env/java/pom.xml, resolved by Maven once (cached in ~/.m2)."""
    for tool in ("java", "javac", "mvn"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed: the Java SDK snippets cannot run here")
    pom = SNIPPET_ENV / "java" / "pom.xml"
    dest = CACHE / "java"
    out = dest / "classpath.txt"
    stamp = dest / ".resolved"
    want = _digest(pom)
    with _locked(CACHE / "java.lock"):
        if stamp.exists() and stamp.read_text() == want and out.exists():
            cp = out.read_text().strip()
            if all(Path(p).exists() for p in cp.split(os.pathsep)):
                return cp
        dest.mkdir(parents=True, exist_ok=True)
        m2 = Path.home() / ".m2" / "repository"
        deps = re.findall(r"<groupId>([^<]+)</groupId>\s*<artifactId>([^<]+)</artifactId>\s*<version>([^<]+)</version>",
                          pom.read_text())
        cached = all(_jar(m2, *d).exists() for d in deps if d[1] != "maven-dependency-plugin")
        mirrors = (Path.home() / ".m2" / "settings.xml").exists()
        if not cached and not mirrors:
            try:
                socket.getaddrinfo(MAVEN_HOST, 443)
            except OSError as err:
                pytest.skip(f"Maven Central ({MAVEN_HOST}) is not reachable from this machine ({err}): "
                            "the Java SDK snippets cannot be compiled here")
        argv = ["mvn", "-B", "-q", *(["-o"] if cached else []), "-f", str(pom), "dependency:build-classpath",
                f"-Dmdep.outputFile={out}"]
        t0 = time.monotonic()
        r = subprocess.run(argv, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            pytest.skip(f"Maven could not resolve the Java SDKs: {_first_error(r.stdout + r.stderr)}")
        stamp.write_text(want)
        (dest / ".resolve-seconds").write_text(f"{time.monotonic() - t0:.1f}\n")
        return out.read_text().strip()


#: (id, api, stream, profile, base URL from the SDK's variable): every Java case, compiled in one javac run
JAVA_CASES = [
    ("openai_plain", "openai", False, "default", False),
    ("openai_stream", "openai", True, "default", False),
    ("native_plain", "dashscope", False, "default", False),
    ("native_stream", "dashscope", True, "default", False),
    ("native_workspace", "dashscope", False, "team-a", False),
    ("native_beijing_default", "dashscope", False, "beijing", True),
]


@pytest.fixture(scope="session")
def java_classes(java_classpath, emulator, tmp_path_factory) -> Path:
    """Every Java case's snippet, each in its own package, compiled together (one javac run)."""
    from qwen_nb.ledger import Ledger
    from qwen_nb.session import Session

    root = tmp_path_factory.mktemp("java")
    s = Session(emulator.profiles(), regions=emulator.regions(), ledger=Ledger(":memory:"))
    files = []
    for case, api, stream, profile, sdk_default in JAVA_CASES:
        code = snippet(language="java", api=api, profile=profile, session=s, stream=stream,
                       emulator=not sdk_default).code
        f = root / "src" / case / "Main.java"
        f.parent.mkdir(parents=True)
        f.write_text(f"package {case};\n" + code, encoding="utf-8")  # the snippet below it, unchanged
        files.append(str(f))
    s.close()
    classes = root / "classes"
    r = subprocess.run(["javac", "-encoding", "UTF-8", "-nowarn", "-cp", java_classpath, "-d", str(classes), *files],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return classes


@pytest.mark.parametrize("case, api, stream, profile, sdk_default", JAVA_CASES, ids=[c[0] for c in JAVA_CASES])
def test_java_snippets_run_with_the_sdks_against_the_emulator(
    emu, tmp_path: Path, java_classpath: str, java_classes: Path, case: str, api: str, stream: bool, profile: str,
    sdk_default: bool,
) -> None:
    p = emu.profiles()[profile]
    more = {"DASHSCOPE_HTTP_BASE_URL": emu.regions()[p.region].native_base()} if sdk_default else {}
    cp = os.pathsep.join([str(java_classes), java_classpath])
    r = _run(["java", "-Dfile.encoding=UTF-8", "-cp", cp, f"{case}.Main"], emu, tmp_path, timeout=120, key=p.key,
             **more)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("I am Qwen") or (profile != "default" and r.stdout.strip()), r.stdout


def test_us_profiles_get_the_us_host():
    """US (Virginia) has its own shared host (the service's base-URL page), in code snippets and Show code."""
    from qwen_nb.ledger import Ledger
    from qwen_nb.session import Session

    s = Session({"us": Profile("us", region="us-east-1", key=KEY)}, ledger=Ledger(":memory:"))
    for api in ("openai", "dashscope"):
        code = snippet(profile="us", api=api, session=s, language="python").code
        assert "https://dashscope-us.aliyuncs.com" in code and "dashscope-intl" not in code
    assert "dashscope-us.aliyuncs.com" in snippet(profile="us", session=s, language="curl").code


@pytest.mark.parametrize("stream", [False, True])
def test_python_responses_snippet_runs_against_the_emulator(session, emu, tmp_path: Path, stream: bool) -> None:
    code = snippet(language="python", session=session, model="qwen3-max-2026-01-23", prompt="What is new?",
                   stream=stream, emulator=True, responses=True, tools=["web_search"]).code
    assert "client.responses.create(" in code and '{"type": "web_search"}' in code
    (tmp_path / "s.py").write_text(code, encoding="utf-8")
    r = _run([sys.executable, "s.py"], emu, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "[web_search_call: completed]" in r.stdout and "canned answer" in r.stdout
    assert "previous_response_id of the next turn): resp_" in r.stdout


def test_responses_snippets_are_python_and_curl_only_and_take_no_chat_params(session) -> None:
    assert snippet(session=session, responses=True, model="qwen3-max-2026-01-23").languages == ["python", "curl"]
    curl = snippet(language="curl", session=session, model="qwen3-max-2026-01-23", responses=True,
                   previous_response_id="resp_1", system="Be brief.").code
    assert "/compatible-mode/v1/responses" in curl and '"previous_response_id": "resp_1"' in curl
    assert '"role": "system"' in curl  # the Responses API takes no instructions: the system prompt is a message
    with pytest.raises(InputError, match="Python and curl"):
        snippet(language="java", session=session, model="qwen3-max-2026-01-23", responses=True)
    with pytest.raises(InputError, match="no chat parameters"):
        snippet(language="python", session=session, model="qwen3-max-2026-01-23", responses=True, temperature=0.5)
    with pytest.raises(InputError, match="responses=True"):
        snippet(language="python", session=session, tools=["web_search"])
