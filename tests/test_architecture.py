"""The shape of the package: one table of service facts, one settings chain, layers one way, cheap import."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

import qwen_nb
from qwen_nb import errors, facts
from qwen_nb._guidance import ErrorContext, ServiceFailure, guided_error
from qwen_nb._profiles import Profile, check_base_url, load_profiles
from qwen_nb._regions import RegionTable, regions
from qwen_nb._settings import Settings, explain_config
from qwen_nb.emulator import wire
from qwen_nb.errors import InputError, error_class

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "qwen_nb"
KEY = "sk-0123456789abcdef0123456789abcdef"


# ------------------------------------------------------------------ the facts table


@pytest.mark.parametrize("fact", list(facts.ERRORS.values()), ids=lambda f: f.key)
def test_every_error_row_maps_to_a_class_that_agrees_on_retrying(fact):
    cls = getattr(errors, fact.error)
    assert issubclass(cls, errors.ServiceError)
    assert cls.retryable is fact.retryable
    for code in (fact.native, fact.compat):
        assert issubclass(error_class(fact.status, code, fact.message), cls)


@pytest.mark.parametrize("fact", list(facts.ERRORS.values()), ids=lambda f: f.key)
@pytest.mark.parametrize("protocol", ["compatible", "native"])
def test_the_emulator_answers_each_row_as_the_client_reads_it(fact, protocol):
    """The emulator's error bodies and the client's translation read the same row."""
    import json

    status, body = wire.error_body(protocol, fact.key, "", "rid-1")
    data = json.loads(body)
    code = data["error"]["code"] if protocol == "compatible" else data["code"]
    message = data["error"]["message"] if protocol == "compatible" else data["message"]
    assert status == fact.status and message == fact.message
    err = guided_error(ServiceFailure("status", status=status, code=code, message=message, request_id="rid-1"),
                       ErrorContext(model="qwen-plus", region="ap-southeast-1"))
    assert isinstance(err, getattr(errors, fact.error)) and err.retryable is fact.retryable
    assert err.fix and err.request_id == "rid-1"


def test_parameter_ranges_are_one_spec_for_client_and_emulator():
    from qwen_nb.emulator.validate import BadRequest, parse_compatible
    from qwen_nb.requests import check_params

    for name, bad in (("temperature", 2.5), ("top_p", 0), ("max_tokens", 0), ("seed", -1), ("presence_penalty", 3)):
        with pytest.raises(InputError, match=name):
            check_params({name: bad})
        if name in ("temperature", "top_p", "max_tokens", "seed"):
            with pytest.raises(BadRequest, match=name):
                parse_compatible({"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}], name: bad})
    with pytest.raises(InputError, match="finite"):
        check_params({"presence_penalty": float("nan")})


def test_key_patterns_live_in_the_facts_only():
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "facts.py":
            continue
        if 'sk-[A-Za-z0-9]' in path.read_text(encoding="utf-8"):
            found.append(path.relative_to(ROOT).as_posix())
    assert found == []


# ------------------------------------------------------------------ settings


def test_settings_chain_order_and_sources(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("DASHSCOPE_REGION=cn-beijing\nQWEN_NB_LEDGER=/from/dotenv\nQWEN_NB_TEAM_API_KEY=" + KEY + "\n")
    config = tmp_path / "config.toml"
    config.write_text('QWEN_NB_PRICES = "/from/config"\nQWEN_NB_LEDGER = "/from/config"\n')
    conf = Settings({"DASHSCOPE_REGION": "us-east-1"}, env={"QWEN_NB_LEDGER": "/from/env"}, dotenv_path=dotenv,
                    config_path=config)
    assert (conf.get("DASHSCOPE_REGION"), conf.source("DASHSCOPE_REGION")) == ("us-east-1", "explicit")
    assert (conf.get("QWEN_NB_LEDGER"), conf.source("QWEN_NB_LEDGER")) == ("/from/env", "environment")
    assert (conf.get("QWEN_NB_PRICES"), conf.source("QWEN_NB_PRICES")) == ("/from/config", "config file")
    assert conf.source("QWEN_NB_TEAM_API_KEY") == ".env" and conf.profile_names() == ["TEAM"]
    assert conf.source("QWEN_NB_EMULATOR") == "default" and conf.get("QWEN_NB_EMULATOR") is None


def test_explain_config_masks_keys_and_names_sources(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QWEN_NB_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    other = KEY.replace("0", "1")
    (tmp_path / ".env").write_text(f"QWEN_NB_TEAM_API_KEY={other}\nQWEN_NB_TEAM_REGION=cn-beijing\n")
    report = explain_config()
    text = str(report) + report._repr_html_() + repr(report)
    assert KEY not in text and KEY.replace("0", "1") not in text and "sk-…cdef" in text
    rows = {s.name: s for s in report}
    assert rows["DASHSCOPE_API_KEY"].source == "environment"
    assert rows["QWEN_NB_TEAM_REGION"].source == ".env" and rows["QWEN_NB_TEAM_REGION"].value == "cn-beijing"
    assert rows["DASHSCOPE_REGION"].source == "default"
    assert qwen_nb.explain_config is not None


def test_no_module_but_the_settings_reads_the_environment():
    readers = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ("qwen_nb/_settings.py",) or rel.startswith("qwen_nb/emulator/"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "environ" and isinstance(node.value, ast.Name) \
                    and node.value.id == "os":
                parent_reads = rel
                readers.append(parent_reads)
    # the pytest plugin sets QWEN_NB_EMULATOR for the kernels it starts (a write, not a setting read)
    assert set(readers) <= {"qwen_nb/testing.py"}


# ------------------------------------------------------------------ base URLs and regions


def test_a_profile_base_url_replaces_the_region_hosts(tmp_path):
    p = Profile("proxy", key=KEY, base_url="https://gateway.example.com/llm/compatible-mode/v1/")
    assert p.base_url == "https://gateway.example.com/llm" and "base_url='https://gateway.example.com/llm'" in repr(p)
    assert check_base_url("http://127.0.0.1:8765") == "http://127.0.0.1:8765"
    assert check_base_url("http://localhost:1/api/v1") == "http://localhost:1"
    with pytest.raises(InputError, match="plain http"):
        Profile("bad", key=KEY, base_url="http://proxy.example.com")
    with pytest.raises(InputError, match="not an http"):
        check_base_url("ftp://example.com")
    env = {"QWEN_NB_EDGE_API_KEY": KEY, "QWEN_NB_EDGE_BASE_URL": "https://edge.example.com"}
    assert load_profiles(env=env, use_dotenv=False)["edge"].base_url == "https://edge.example.com"


def test_calls_go_to_the_profile_base_url(tmp_path):
    from qwen_nb.emulator import Emulator
    from qwen_nb.ledger import Ledger
    from qwen_nb.session import Session

    with Emulator() as emu:
        s = Session({}, ledger=Ledger(":memory:"))  # the real service's hosts ...
        s.add_profile("local", emu.key("default"), base_url=f"{emu.url}/ap-southeast-1")  # ... but not for this one
        assert s.chat("Who are you?", profile="local").text.startswith("I am Qwen")
        assert s.chat("Who are you?", profile="local", api="dashscope").text.startswith("I am Qwen")
        s.close()


def test_regions_is_one_type_everywhere():
    from qwen_nb.emulator.hosts import emulator_regions
    from qwen_nb.ledger import Ledger
    from qwen_nb.session import Session

    assert isinstance(regions(), RegionTable) and isinstance(qwen_nb.regions(), RegionTable)
    table = emulator_regions("http://127.0.0.1:9")
    assert isinstance(table, RegionTable)
    assert isinstance(Session({}, regions=table, ledger=Ledger(":memory:")).regions(), RegionTable)
    assert "<table>" in regions()._repr_html_() and "dashscope-intl" in str(regions())


# ------------------------------------------------------------------ layers and import cost


def test_import_contracts_hold():
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.skip("import-linter is not installed")
    proc = subprocess.run([str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_import_is_cheap_and_loads_no_sdk():
    code = ("import sys, qwen_nb; heavy = [m for m in ('openai', 'dashscope', 'ipywidgets', 'httpx', "
            "'qwen_nb.emulator', 'qwen_nb.session') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]", out.stderr


def test_public_errors_are_exported_at_the_top():
    for name in ("QwenNbError", "InputError", "ModelNotGrantedError", "RateLimitError", "CancelledCallError"):
        assert getattr(qwen_nb, name) is getattr(errors, name)


def test_every_module_opens_with_a_docstring_line():
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if not doc or not doc.splitlines()[0].strip():
            missing.append(path.relative_to(ROOT).as_posix())
    assert missing == []


def test_grants_through_the_permissions_api():
    """q.granted_models / q.grant / q.revoke over the documented list and POST (the emulator serves both)."""
    from qwen_nb.emulator import Emulator
    from qwen_nb.errors import AccessDeniedError
    from qwen_nb.ledger import Ledger
    from qwen_nb.session import Session

    with Emulator() as emu:
        s = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"))
        assert s.granted_models("team-a") == ["qwen-plus", "qwen-flash", "qwen-vl-plus"]
        with pytest.raises(AccessDeniedError, match="may not change the model grants"):
            s.grant(["qwen-max"], profile="team-a")  # a sub-workspace's own key
        admin = s.get_profile("default")
        s.add_profile("team-a-admin", admin.key, workspace=s.get_profile("team-a").workspace)
        done = s.grant(["qwen-max"], profile="team-a-admin")
        assert done.granted and done.models == ("qwen-max",) and "granted to workspace" in str(done)
        assert "qwen-max" in s.granted_models("team-a", refresh=True)
        assert s.chat("Who are you?", model="qwen-max", profile="team-a").text
        s.revoke("qwen-max", profile="team-a-admin")
        assert "qwen-max" not in s.granted_models("team-a", refresh=True)
        with pytest.raises(InputError, match="no workspace id"):
            s.grant("qwen-max", profile="default")
        s.close()
