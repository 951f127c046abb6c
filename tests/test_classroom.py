"""A class on one emulator: thirty students with their own keys, grants and budgets, and a teacher's token.

The class's emulator listens on 127.0.0.2 and the students connect there. With a class (a teacher
token) the emulator decides by the token alone, never by the client's address, so these clients
are strangers to it like any machine of the room (a connection to 127.0.0.2 comes from 127.0.0.1).
Traffic stays inside 127.0.0.0/8.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import threading
import time

import dashscope
import httpx
import openai
import pytest

from qwen_nb import errors
from qwen_nb.classroom import Student, cli_main, init_classroom, load_students, make_classroom
from qwen_nb.emulator import Emulator
from qwen_nb.emulator.config import load_config, running_profiles
from qwen_nb.emulator.hosts import emulator_regions
from qwen_nb.ledger import Ledger
from qwen_nb.session import Session

SG = "ap-southeast-1"
#: the students' emulator listens here: another address than the teacher's loopback 127.0.0.1
HOST = "127.0.0.2"
STUDENTS = 30


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    """A class of 30 written by init_classroom, served on 127.0.0.2."""
    folder = tmp_path_factory.mktemp("class")
    files = init_classroom(STUDENTS, folder, url=f"http://{HOST}:8765", name="Qwen 101")
    emu = Emulator(files.config, host=HOST)
    emu.start()
    yield files, emu
    emu.stop()


@pytest.fixture
def cls(klass):
    files, emu = klass
    emu.reset()
    yield files, emu
    emu.reset()


def _teacher(emu) -> dict[str, str]:
    return {"Authorization": f"Bearer {emu.teacher_token}"}


# -- the files ------------------------------------------------------------------------------------


def test_init_writes_private_files_with_a_key_per_student(klass):
    files, _ = klass
    for path in (files.config, files.csv, files.html):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert (files.config.parent / ".gitignore").read_text().splitlines()[-1] == "*"
    rows = list(csv.DictReader(files.csv.open()))
    assert len(rows) == STUDENTS and len({r["QWEN_NB_EMULATOR_KEY"] for r in rows}) == STUDENTS
    assert all(r["QWEN_NB_EMULATOR"] == f"http://{HOST}:8765" for r in rows)
    assert rows[6]["env"] == f"QWEN_NB_EMULATOR=http://{HOST}:8765\nQWEN_NB_EMULATOR_KEY={rows[6]['QWEN_NB_EMULATOR_KEY']}"
    page = files.html.read_text()
    assert "Private." in page and page.count('class="card"') == STUDENTS and rows[0]["QWEN_NB_EMULATOR_KEY"] in page
    people, url = load_students(files.config)
    assert [s.name for s in people] == [f"student-{i:02d}" for i in range(1, 31)] and url == f"http://{HOST}:8765"
    # the objects never show a key
    shown = repr(files) + repr(people[0]) + people[0].masked_key
    assert "sk-" in shown and not any(s.key in shown for s in people) and "student-01" not in repr(files)


def test_init_keeps_an_existing_class_and_checks_its_input(tmp_path):
    init_classroom(2, tmp_path, url="http://127.0.0.1:8765")
    before = (tmp_path / "classroom.toml").read_text()
    with pytest.raises(errors.InputError, match="exists already"):
        init_classroom(2, tmp_path, url="http://127.0.0.1:8765")
    assert (tmp_path / "classroom.toml").read_text() == before
    for bad in ({"students": 0}, {"students": True}, {"region": "mars-1"}, {"models": ["qwen-nope"]},
                {"budget": -1}, {"url": "192.168.1.2:8765"}):
        with pytest.raises(errors.InputError):
            make_classroom(**{"students": 2, **bad})  # type: ignore[arg-type]
    assert cli_main(["init", "--students", "3", "--out", str(tmp_path / "b"), "--url", "http://127.0.0.1:9"]) == 0
    assert cli_main(["init", "--students", "3", "--out", str(tmp_path / "b")]) == 2  # not replaced


def test_check_notebooks_reports_a_handout_key_pasted_into_a_notebook(klass):
    from qwen_nb.notebooks import scan_notebook

    files, emu = klass
    student = files.students[4]
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": "a", "metadata": {}, "execution_count": 1, "source": "print(open('.env').read())",
         "outputs": [{"output_type": "stream", "name": "stdout", "text": student.env_lines(emu.url)}]},
        {"cell_type": "markdown", "id": "b", "metadata": {}, "source": f"token: {emu.teacher_token}"}]}
    found = scan_notebook(nb)
    assert len(found) == 2 and all(student.key not in str(f) for f in found)


# -- students are other machines: their own workspace through their own key -----------------------------


def test_a_student_gets_their_own_workspace_through_their_key(cls, monkeypatch, tmp_path):
    from qwen_nb import _default as core

    files, emu = cls
    me = files.students[2]
    profiles = running_profiles(emu.url, key=me.key)
    assert list(profiles) == [me.name] and profiles[me.name].workspace == me.workspace
    assert profiles[me.name].models == me.models
    # connect() reads the handout's two lines
    (tmp_path / ".env").write_text(me.env_lines(emu.url))
    for var in [v for v in os.environ if v == "DASHSCOPE_API_KEY" or v.startswith("QWEN_NB_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("QWEN_NB_LEDGER", str(tmp_path / "usage.sqlite"))
    monkeypatch.chdir(tmp_path)
    before = core.set_default_session(None)
    try:
        s = core.connect(ledger=Ledger(":memory:"))
        assert [p.name for p in s.profiles()] == [me.name] and s.on_emulator
        assert s.chat("Who are you?").text.startswith("I am Qwen")
        s.close()
        # a key the emulator does not know, or none at all: a clear error, never the demo profiles
        (tmp_path / ".env").write_text(f"QWEN_NB_EMULATOR={emu.url}\nQWEN_NB_EMULATOR_KEY=sk-{'1' * 32}\n")
        with pytest.raises(errors.ConfigError, match="does not know the key sk-…1111"):
            core.connect(ledger=Ledger(":memory:"))
        (tmp_path / ".env").write_text(f"QWEN_NB_EMULATOR={emu.url}\n")
        with pytest.raises(errors.ConfigError, match="QWEN_NB_EMULATOR_KEY"):
            core.connect(ledger=Ledger(":memory:"))
    finally:
        left = core.set_default_session(before)
        if left is not None:
            left.close()


def test_students_cannot_read_others_prompts_or_touch_the_controls(cls):
    files, emu = cls
    a, b = files.students[0], files.students[1]
    for s in (a, b):
        r = httpx.post(emu.base_url(SG, "openai") + "/chat/completions", headers={"Authorization": f"Bearer {s.key}"},
                       json={"model": "qwen-plus", "messages": [{"role": "user",
                                                                 "content": f"private note of {s.name}"}]})
        assert r.status_code == 200
    mine = httpx.get(emu.url + "/_emulator/requests", headers={"Authorization": f"Bearer {a.key}"})
    assert mine.status_code == 200 and [r["preview"] for r in mine.json()] == [f"private note of {a.name}"]
    assert httpx.get(emu.url + "/_emulator/usage", headers={"Authorization": f"Bearer {a.key}"}).json().keys() == {
        a.name}
    for method, name in (("POST", "faults"), ("POST", "reset"), ("GET", "workspaces"), ("GET", "counters"),
                         ("POST", "workspaces/" + b.name), ("POST", "keys"), ("GET", "faults")):
        as_student = httpx.request(method, emu.url + "/_emulator/" + name, json={"fail_next": 5},
                                   headers={"Authorization": f"Bearer {a.key}"})
        anonymous = httpx.request(method, emu.url + "/_emulator/" + name, json={"fail_next": 5})
        assert (as_student.status_code, anonymous.status_code) == (403, 401), name
        assert "teacher token" in as_student.json()["message"]
    assert httpx.get(emu.url + "/_emulator/requests").status_code == 401
    assert httpx.get(emu.url + "/_emulator/whoami").status_code == 401
    assert emu.state.pacing.fail_next == 0  # nothing was injected
    # the teacher sees everyone's, with the token in either header
    everyone = httpx.get(emu.url + "/_emulator/requests", headers=_teacher(emu)).json()
    assert {r["preview"] for r in everyone} == {f"private note of {a.name}", f"private note of {b.name}"}
    assert httpx.get(emu.url + "/_emulator/counters", headers={"X-Qwen-Nb-Teacher": emu.teacher_token}).json()[
        "chat"] == 2
    assert httpx.get(emu.url + "/_emulator/faults", headers={"Authorization": "Bearer sk-teacher-" + "0" * 32}
                     ).status_code == 401


@pytest.fixture
def served(klass):
    """The class's emulator in its own process on 127.0.0.2, as a teacher runs it (``qwen-nb emulator --classroom``)."""
    import re
    import subprocess
    import sys

    files, _ = klass
    proc = subprocess.Popen([sys.executable, "-m", "qwen_nb.cli", "emulator", "--classroom", str(files.config),
                             "--host", HOST, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = re.search(r"emulator on (http://\S+)", first).group(1)  # type: ignore[union-attr]
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # the rest of the banner
        yield files, url, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def _rss_of(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(ln.split()[1]) / 1024 for ln in f if ln.startswith("VmRSS:"))


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) a process has used."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def test_thirty_students_at_once_with_both_sdks_grants_and_errors(served):
    """Tutorial-like sessions of 30 students at once; odd students revoke qwen-plus, everyone grants qwen-max."""
    files, url, pid = served
    regions = emulator_regions(url)
    teacher = {"Authorization": f"Bearer {load_config(files.config).classroom.teacher_token}"}  # type: ignore[union-attr]
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    rss_before = _rss_of(pid)

    def timed(fn, *a, **kw):
        t = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            with lock:
                latencies.append(time.perf_counter() - t)

    def student(i: int, me: Student) -> None:
        secret = f"secret-of-{me.name}"
        s = None
        try:
            profiles = timed(running_profiles, url, key=me.key, timeout=120)  # generous: CI machines are busy
            s = Session(profiles, regions=regions, ledger=Ledger(":memory:"), max_retries=0)
            assert timed(s.chat, f"Hello, {secret}").text
            assert "".join(d.content for d in timed(lambda: list(s.stream_chat(f"Stream {secret}")))), me.name
            with pytest.raises(errors.ModelNotGrantedError):
                timed(s.chat, "hi", model="qwen-max")
            timed(s.grant, "qwen-max")
            assert timed(s.chat, "hi", model="qwen-max").model == "qwen-max"
            if i % 2:
                timed(s.revoke, "qwen-plus")
                with pytest.raises(errors.ModelNotGrantedError):
                    timed(s.chat, "hi", model="qwen-plus")
            else:
                assert timed(s.chat, "hi", model="qwen-plus").text
            assert sorted(timed(s.granted_models, refresh=True)) == sorted(
                {"qwen-max", *me.models} - ({"qwen-plus"} if i % 2 else set()))
            oa = openai.OpenAI(base_url=regions[SG].compatible_base(), api_key=me.key, max_retries=0, timeout=120)
            r = timed(oa.chat.completions.create, model="qwen-flash",
                      messages=[{"role": "user", "content": f"openai {secret}"}])
            assert r.choices[0].message.content
            with pytest.raises(openai.NotFoundError):
                timed(oa.chat.completions.create, model="qwen-nope", messages=[{"role": "user", "content": "x"}])
            oa.close()
            d = timed(dashscope.Generation.call, api_key=me.key, base_address=regions[SG].native_base(),
                      model="qwen-flash", messages=[{"role": "user", "content": f"dashscope {secret}"}],
                      result_format="message")
            assert d.status_code == 200, d.message
            # the student's own log holds only their prompts; the controls are closed to them
            mine = timed(httpx.get, url + "/_emulator/requests", headers={"Authorization": f"Bearer {me.key}"},
                         timeout=60)
            previews = [r["preview"] for r in mine.json() if r["preview"]]
            assert previews and all("secret-of-" not in p or secret in p for p in previews), me.name
            hit = timed(httpx.post, url + "/_emulator/faults", json={"fail_next": 100},
                        headers={"Authorization": f"Bearer {me.key}"}, timeout=60)
            assert hit.status_code == 403
        except BaseException as exc:  # collected: pytest.raises inside threads reports nothing by itself
            with lock:
                failures.append(f"{me.name}: {exc!r}")
        finally:
            if s is not None:
                s.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=student, args=(i, me)) for i, me in enumerate(files.students)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    wall = time.perf_counter() - t0
    assert not failures, failures[:3]
    assert not any(t.is_alive() for t in threads)
    # no cross-talk: each workspace has exactly its own student's grants; usage is per student
    usage = httpx.get(url + "/_emulator/usage", headers=teacher, timeout=60).json()
    for i, me in enumerate(files.students):
        want = {"qwen-max", *me.models} - ({"qwen-plus"} if i % 2 else set())
        u = usage[me.name]
        assert set(u["granted_now"]) == want, me.name
        assert u["calls"] >= 9 and u["errors"] >= 2 and u["input_tokens"] > 0 and u["cost"] > 0, (me.name, u)
    assert usage["teacher"]["calls"] == 0
    lat = sorted(latencies)
    p99 = lat[int(0.99 * (len(lat) - 1))] * 1000
    counted = httpx.get(url + "/_emulator/counters", headers=teacher, timeout=60).json()["total"]
    print(f"\nclassroom: {STUDENTS} students, {len(lat)} calls in {wall:.1f} s, "
          f"p50 {lat[len(lat) // 2] * 1000:.1f} ms, p99 {p99:.1f} ms, emulator RSS {_rss_of(pid):.0f} MB "
          f"(before {rss_before:.0f} MB), emulator counted {counted} requests using {_cpu_of(pid):.1f} CPU s, "
          f"load average {os.getloadavg()[0]:.1f}")


def test_a_student_budget_stops_that_student_only(cls):
    files, emu = cls
    a, b = files.students[0], files.students[1]
    emu.set_workspace(a.name, budget=1e-9)  # the first answer spends it
    regions = emulator_regions(emu.url)
    sa = Session(running_profiles(emu.url, key=a.key), regions=regions, ledger=Ledger(":memory:"), max_retries=0)
    sb = Session(running_profiles(emu.url, key=b.key), regions=regions, ledger=Ledger(":memory:"), max_retries=0)
    try:
        sa.chat("hello")
        with pytest.raises(errors.ServiceBudgetError):
            sa.chat("hello again")
        assert sb.chat("hello").text and sb.chat("hello again").text
        emu.reset_workspace(a.name)
        assert sa.chat("hello after the reset").text
    finally:
        sa.close()
        sb.close()


# -- the teacher's commands and banner ----------------------------------------------------------------


def test_teacher_usage_and_reset_commands(cls, capsys, monkeypatch):
    from qwen_nb.emulator.cli import teacher_main

    files, emu = cls
    me = files.students[5]
    emu.grant(me.name, ["qwen-max"])
    httpx.post(emu.base_url(SG, "openai") + "/chat/completions", headers={"Authorization": f"Bearer {me.key}"},
               json={"model": "qwen-max", "messages": [{"role": "user", "content": "hi"}]}).raise_for_status()
    assert teacher_main(["usage", "--classroom", str(files.config), "--url", emu.url]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith(me.name))
    assert line.split()[1:3] == ["1", "0"] and "qwen-max" in line and me.key not in out
    assert teacher_main(["usage", "--url", emu.url, "--json", "--workspace", me.name,
                         "--token", emu.teacher_token]) == 0
    assert json.loads(capsys.readouterr().out)[me.name]["calls"] == 1
    # without the token: refused, and the message says where the token comes from
    monkeypatch.delenv("QWEN_NB_TEACHER_TOKEN", raising=False)
    assert teacher_main(["reset", "--url", emu.url]) == 1
    assert "QWEN_NB_TEACHER_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("QWEN_NB_TEACHER_TOKEN", emu.teacher_token)
    assert teacher_main(["reset", "--url", emu.url, "--workspace", me.name]) == 0
    assert emu.grants(me.name) == me.models and emu.usage(me.name)[me.name]["calls"] == 0
    assert emu.teacher_token not in capsys.readouterr().out


def test_the_banner_gives_students_a_reachable_address(cls, capsys, monkeypatch):
    from qwen_nb.emulator import cli, server

    files, emu = cls
    cli._class_banner(emu, str(files.config))
    out = capsys.readouterr().out
    assert f"QWEN_NB_EMULATOR={emu.url}" in out and "30 student workspaces" in out
    assert emu.teacher_token not in out and not any(s.key in out for s in files.students)
    # a wildcard host: the machine's network address, never 0.0.0.0 (not started: no traffic leaves loopback)
    wide = Emulator(host="0.0.0.0")
    wide._bound_port = 8765
    monkeypatch.setattr(server, "lan_address", lambda: "192.168.7.20")
    assert wide.lan_url == "http://192.168.7.20:8765" and cli._reach(wide) == "http://192.168.7.20:8765"
    monkeypatch.setattr(server, "lan_address", lambda: None)
    assert "0.0.0.0" not in cli._reach(wide)
    assert wide.teacher_token and wide.teacher_token.startswith("sk-teacher-")  # made up: other machines reach it
    assert Emulator(host="127.0.0.2").teacher_token is None  # loopback: as before


def test_a_loopback_emulator_without_a_class_keeps_its_open_controls(emu):
    assert httpx.get(emu.url + "/_emulator/workspaces?keys=full").status_code == 200
    assert httpx.post(emu.url + "/_emulator/faults", json={"latency": 0}).status_code == 200


# -- bodies: the service's cap and error ---------------------------------------------------------------


def test_a_body_over_the_services_cap_gets_the_services_error(emu):
    big = [{"role": "user", "content": "word " * 1_300_000}]  # 6.5 MB
    with pytest.raises(openai.BadRequestError) as exc:
        openai.OpenAI(base_url=emu.base_url(SG, "openai"), api_key=emu.key(), max_retries=0).chat.completions.create(
            model="qwen-plus", messages=big)
    assert exc.value.body["message"] == "Exceeded limit on max bytes to request body : 6291456"
    r = dashscope.Generation.call(api_key=emu.key(), base_address=emu.base_url(SG, "dashscope"), model="qwen-plus",
                                  messages=big)
    assert r.status_code == 400 and r.message == "Exceeded limit on max bytes to request body : 6291456"
    s = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"), max_retries=0)
    try:
        with pytest.raises(errors.InvalidParameterError) as err:
            s.chat(big)
        assert "6 MiB" in (err.value.fix or "")
    finally:
        s.close()


def test_requests_without_a_valid_key_keep_neither_body_nor_headers(emu):
    r = httpx.post(emu.base_url(SG, "openai") + "/chat/completions", headers={"Authorization": "Bearer sk-" + "2" * 32},
                   json={"model": "qwen-plus", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 401
    rec = emu.requests[-1]
    assert not rec.authenticated and rec.body is None and rec.headers == {} and rec.key == "sk-…2222"


def test_a_shared_emulator_without_a_class_lists_demo_keys_but_guards_its_controls(tmp_path):
    from qwen_nb.emulator.config import default_config, new_token

    token = new_token()
    with Emulator(host=HOST, teacher_token=token) as shared:  # what --host 0.0.0.0 makes: a token
        assert set(running_profiles(shared.url)) == set(shared.profiles())  # the public demo keys
        assert httpx.post(shared.url + "/_emulator/faults", json={"fail_next": 1}).status_code == 401
        assert httpx.post(shared.url + "/_emulator/faults", json={"fail_next": 0},
                          headers={"X-Qwen-Nb-Teacher": token}).status_code == 200
    # a config file's keys are not handed out: a clear error says to use QWEN_NB_EMULATOR_KEY
    cfg = tmp_path / "own.toml"
    cfg.write_text(f'[[workspace]]\nname = "lab"\nid = "llm-0123456789abcdef"\nregion = "{SG}"\ndefault = true\n'
                   f'keys = ["sk-{"3" * 32}"]\n')
    with Emulator(cfg, host=HOST, teacher_token=token) as own:
        with pytest.raises(errors.ConfigError, match="QWEN_NB_EMULATOR_KEY"):
            running_profiles(own.url)
        assert list(running_profiles(own.url, key="sk-" + "3" * 32)) == ["lab"]
    assert default_config().classroom is None
