"""Snippets: pure rendering checks, then the snippets run for real against the emulator."""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_nb._profiles import Profile
from qwen_nb.errors import InputError
from qwen_nb.snippets import LANGUAGES, Snippet, SnippetSet, Target, render, request_body, snippet

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


def target(api: str = "openai", **kw) -> Target:
    base = "https://dashscope-intl.aliyuncs.com" + ("/compatible-mode/v1" if api == "openai" else "/api/v1")
    return Target(**{"api": api, "base_url": base, "model": "qwen-plus", **kw})


# ----------------------------------------------------------------------------- pure


@pytest.mark.parametrize("api", BOTH)
@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_every_language_names_url_model_and_env_key(lang: str, api: str) -> None:
    t = target(api, prompt="Who are you?", profile="team-a", region_label="Singapore")
    s = render(lang, t)
    assert isinstance(s, Snippet) and s.language == lang and s.api == api
    path = "/compatible-mode/v1" if api == "openai" else "/api/v1"
    if lang == "python":  # SDKs take the base URL and add the path themselves
        assert f"dashscope-intl.aliyuncs.com{path}" in s.code
    else:
        assert t.url in s.code
        assert t.url.endswith("/chat/completions" if api == "openai" else "/services/aigc/text-generation/generation")
    assert '"qwen-plus"' in s.code or "'qwen-plus'" in s.code
    assert URL_READ[lang] in s.code
    assert "sk-" not in s.code
    assert s._repr_markdown_().startswith("```" + LANGUAGES[lang].fence + "\n")
    assert s._repr_markdown_().rstrip().endswith("```")
    assert "<pre><code" in s._repr_html_()


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
        assert "dashscope.Generation.call(" in code and "base_address=" in code
        assert 'result_format="message"' in code and "enable_thinking=False" in code


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
def test_go_java_csharp_php_bodies_decode_to_the_request_body(api: str) -> None:
    t = target(api, prompt=TRICKY)
    want = request_body(t)
    go = render("go", t).code
    raw = re.search(r"body := \[\]byte\(`(.*?)`\)", go, re.S).group(1)
    assert json.loads(raw) == want and "package main" in go and go.count("{") == go.count("}")
    java = render("java", t).code
    block = re.search(r'String body = """\n(.*?)\n\s*""";', java, re.S).group(1)
    # text-block escapes: doubled backslashes stand for one
    assert json.loads(block.replace("\\\\", "\\")) == want and "public class Main" in java
    cs = render("csharp", t).code
    verbatim = re.search(r'var body = @"(.*?)";\n', cs, re.S).group(1)
    assert json.loads(verbatim.replace('""', '"')) == want
    php = render("php", t).code
    assert php.startswith("<?php\n") and "json_encode($body)" in php and "'It\\'s" not in php  # tricky -> "..."
    assert php.count("[") == php.count("]")


def test_node_snippet_passes_node_check(tmp_path: Path) -> None:
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    for api in BOTH:
        for stream in (False, True):
            f = tmp_path / f"s_{api}_{stream}.mjs"
            f.write_text(render("node", target(api, prompt=TRICKY, stream=stream)).code, encoding="utf-8")
            subprocess.run([node, "--check", str(f)], check=True, capture_output=True, timeout=30)


def test_java_snippet_compiles(tmp_path: Path) -> None:
    javac = shutil.which("javac")
    if not javac:
        pytest.skip("javac is not installed")
    for i, (api, stream) in enumerate([("openai", False), ("dashscope", True)]):
        d = tmp_path / str(i)
        d.mkdir()
        (d / "Main.java").write_text(render("java", target(api, prompt=TRICKY, stream=stream)).code, encoding="utf-8")
        r = subprocess.run(
            [javac, "-encoding", "UTF-8", "Main.java"], cwd=d, capture_output=True, text=True, timeout=120
        )
        assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("tool", ["php", "go", "dotnet"])
def test_other_toolchains_when_present(tool: str, tmp_path: Path) -> None:
    exe = shutil.which(tool)
    if not exe:
        pytest.skip(f"{tool} is not installed on this machine; the snippet is checked textually above")
    if tool == "php":
        f = tmp_path / "s.php"
        f.write_text(render("php", target("dashscope", prompt=TRICKY)).code, encoding="utf-8")
        subprocess.run([exe, "-l", str(f)], check=True, capture_output=True, timeout=60)
    elif tool == "go":
        f = tmp_path / "main.go"
        f.write_text(render("go", target("openai", prompt=TRICKY)).code, encoding="utf-8")
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


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"language": "cobol"}, ["cobol", "python", "curl"]),
        ({"api": "grpc"}, ["grpc", "openai", "dashscope"]),
        ({"language": "python-dashscope", "api": "openai"}, ["implies"]),
        ({"frequency": 1}, ["frequency", "temperature"]),
        ({"model": ""}, ["model"]),
        ({"prompt": 3}, ["prompt"]),
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


def test_a_key_pasted_into_a_prompt_is_masked() -> None:
    s = snippet(profile=Profile("sg", key=KEY), language="node", prompt=f"my key is {KEY}")
    assert KEY not in s.code and "sk-…1234" in s.code


# ----------------------------------------------------------------------------- against the emulator


def _demo_key(emu) -> str:
    return emu.profiles()["default"].key


def _run(argv: list[str], emu, cwd: Path, timeout: int = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "DASHSCOPE_API_KEY": _demo_key(emu), "NO_PROXY": "127.0.0.1,localhost"}
    env.pop("HTTP_PROXY", None)
    env.pop("HTTPS_PROXY", None)
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_emulator_snippets_point_at_it_and_say_so(session, emu) -> None:
    s = snippet(language="curl", session=session, api="openai")
    assert emu.url in s.code and "emulator" in s.code.lower()
    assert "https://dashscope-intl.aliyuncs.com/compatible-mode/v1" in s.code  # what to use on the service
    everything = snippet(session=session)._repr_markdown_() + snippet(session=session, api="dashscope")._repr_html_()
    for p in emu.profiles().values():
        assert p.key not in everything


@pytest.mark.parametrize("api", BOTH)
@pytest.mark.parametrize("stream", [False, True])
def test_python_snippets_run_against_the_emulator(session, emu, tmp_path: Path, api: str, stream: bool) -> None:
    code = snippet(language="python", api=api, session=session, stream=stream).code
    (tmp_path / "s.py").write_text(code, encoding="utf-8")
    r = _run([sys.executable, "s.py"], emu, tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("I am Qwen"), r.stdout


def test_python_snippet_for_a_sub_workspace_runs_on_the_emulator_gateway(session, emu, tmp_path: Path) -> None:
    ws = [p for p in emu.profiles().values() if p.workspace]
    if not ws:
        pytest.skip("emulator has no sub-workspace profile")
    p = ws[0]
    code = snippet(language="python-openai", profile=p.name, session=session, model=(p.models or ["qwen-plus"])[0]).code
    assert f"/ws/{p.workspace}/" in code
    (tmp_path / "s.py").write_text(code, encoding="utf-8")
    env_key = p.key
    env = {**os.environ, "DASHSCOPE_API_KEY": env_key}
    r = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()


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
    code = snippet(language="curl", api=api, session=session, stream=stream).code
    (tmp_path / "s.sh").write_text(code, encoding="utf-8")
    r = _run(["bash", "s.sh"], emu, tmp_path)
    assert r.returncode == 0, r.stderr
    assert answer_of(r.stdout, api, stream).startswith("I am Qwen")


@pytest.mark.parametrize("api", BOTH)
@pytest.mark.parametrize("stream", [False, True])
def test_node_snippets_run_against_the_emulator(session, emu, tmp_path: Path, api: str, stream: bool) -> None:
    if not shutil.which("node"):
        pytest.skip("node is not installed")
    code = snippet(language="node", api=api, session=session, stream=stream).code
    (tmp_path / "s.mjs").write_text(code, encoding="utf-8")
    r = _run(["node", "s.mjs"], emu, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (sse_text(r.stdout, api) if stream else r.stdout).startswith("I am Qwen")


@pytest.mark.parametrize("api, stream", [("dashscope", False), ("openai", True)])
def test_java_snippet_runs_against_the_emulator(session, emu, tmp_path: Path, api: str, stream: bool) -> None:
    if not shutil.which("java"):
        pytest.skip("java is not installed")
    code = snippet(language="java", api=api, session=session, stream=stream).code
    (tmp_path / "Main.java").write_text(code, "utf-8")
    r = _run(["java", "-Dfile.encoding=UTF-8", "Main.java"], emu, tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    assert answer_of(r.stdout, api, stream).startswith("I am Qwen")


def test_us_profiles_get_the_us_host():
    """US (Virginia) has its own shared host (the service's base-URL page), in code snippets and Show code."""
    from qwen_nb.ledger import Ledger
    from qwen_nb.session import Session

    s = Session({"us": Profile("us", region="us-east-1", key=KEY)}, ledger=Ledger(":memory:"))
    for api in ("openai", "dashscope"):
        code = snippet(profile="us", api=api, session=s, language="python").code
        assert "https://dashscope-us.aliyuncs.com" in code and "dashscope-intl" not in code
    assert "dashscope-us.aliyuncs.com" in snippet(profile="us", session=s, language="curl").code
