"""Every tutorial notebook runs unchanged with the three key setups a learner may have.

(a) a default-workspace key only, (b) a default key plus one sub-workspace key, (c) a
sub-workspace key alone. An emulator configured with those workspaces and keys stands in for
the service: the keys reach the kernels through the environment as a user would set them
(``DASHSCOPE_API_KEY``, ``QWEN_NB_TEAM_API_KEY``, ``QWEN_NB_TEAM_WORKSPACE``), with
``*_BASE_URL`` pointing the profiles at the emulator's hosts, and proxy variables that send
anything aimed elsewhere to a closed loopback port. Exercise checks grade the shipped solutions
(``QWEN_NB_TUTORIAL_SOLUTIONS=1``). No cell may raise. The 3 setups run in parallel (one kernel
each), every notebook pair in notebooks/ (new ones included).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("jupytext")
pytest.importorskip("nbclient")

from qwen_nb.recording import SOLUTIONS_VAR, pairs, read_pair  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
# a notebook recorded with its cassette (NAME.cassettes/) is checked by replaying it (make test: --qwen-replay)
PAIRS = [py for py in pairs(NOTEBOOKS) if not py.with_suffix(".cassettes").is_dir()]
SETUPS = ("default-only", "default+sub", "sub-only")
DEFAULT_KEY = "sk-" + secrets.token_hex(16)
TEAM_KEY = "sk-" + secrets.token_hex(16)
DEFAULT_WS, TEAM_WS = "llm-tutdefault0001", "llm-tutteam00000001"
#: the sub-workspace's grants: the chat models the tutorials use, and the models 10_beyond_chat names as its
#: prerequisites (a workspace without them sees the not-granted guidance there)
TEAM_MODELS = ["qwen-plus", "qwen-flash", "qwen-vl-plus", "text-embedding-v4", "qwen3-rerank", "wan2.6-t2i",
               "qwen3-tts-flash", "qwen3-asr-flash", "qwen3-max-2026-01-23"]


def _config(path: Path) -> None:
    path.write_text(f"""
[[workspace]]
name = "default"
id = "{DEFAULT_WS}"
region = "ap-southeast-1"
default = true
keys = ["{DEFAULT_KEY}"]
models = "all"

[[workspace]]
name = "team"
id = "{TEAM_WS}"
region = "ap-southeast-1"
keys = ["{TEAM_KEY}"]
models = {TEAM_MODELS!r}
""", encoding="utf-8")


def _env(setup: str, url: str, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith("DASHSCOPE_") or k.startswith("QWEN_NB_"))}
    config = tmp / "config.toml"
    config.write_text("", encoding="utf-8")
    env.update({
        "QWEN_NB_CONFIG": str(config),
        "QWEN_NB_LEDGER": str(tmp / f"{setup}.sqlite"),
        SOLUTIONS_VAR: "1",
        # nothing may leave the machine: requests for any other host go to a closed loopback port
        "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
        "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    })
    if setup in ("default-only", "default+sub"):
        env.update({"DASHSCOPE_API_KEY": DEFAULT_KEY, "DASHSCOPE_REGION": "ap-southeast-1",
                    "DASHSCOPE_BASE_URL": f"{url}/ap-southeast-1"})
    if setup in ("default+sub", "sub-only"):
        env.update({"QWEN_NB_TEAM_API_KEY": TEAM_KEY, "QWEN_NB_TEAM_REGION": "ap-southeast-1",
                    "QWEN_NB_TEAM_WORKSPACE": TEAM_WS, "QWEN_NB_TEAM_MODELS": ",".join(TEAM_MODELS),
                    "QWEN_NB_TEAM_BASE_URL": f"{url}/ap-southeast-1/ws/{TEAM_WS}"})
    return env


def _run(py: Path, env: dict[str, str]) -> str | None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = read_pair(py)
    client = NotebookClient(nb, kernel_name="python3", timeout=180,
                            resources={"metadata": {"path": str(NOTEBOOKS)}}, store_widget_state=False)
    try:
        client.execute(env=env)
    except CellExecutionError as err:
        return str(err)[-3000:]
    return None


@pytest.fixture(scope="module")
def runs():
    from qwen_nb.emulator import Emulator

    with tempfile.TemporaryDirectory(prefix="qwen-nb-setups-") as tmp_name:
        tmp = Path(tmp_name)
        _config(tmp / "emulator.toml")
        emu = Emulator(tmp / "emulator.toml").start()
        try:
            t0 = time.perf_counter()

            def one_setup(setup: str) -> dict[str, str | None]:
                env = _env(setup, emu.url, tmp)
                return {py.stem: _run(py, env) for py in PAIRS}

            with ThreadPoolExecutor(max_workers=len(SETUPS)) as pool:
                results = dict(zip(SETUPS, pool.map(one_setup, SETUPS), strict=True))
            print(f"\n{len(PAIRS)} notebooks x {len(SETUPS)} key setups in {time.perf_counter() - t0:.1f} s")
            yield results
        finally:
            emu.stop()


@pytest.mark.parametrize("setup", SETUPS)
def test_every_notebook_runs_with_this_key_setup(runs, setup):
    failed = {name: err for name, err in runs[setup].items() if err}
    assert not failed, "\n\n".join(f"{name}:\n{err}" for name, err in failed.items())
    assert len(runs[setup]) == len(PAIRS) >= 8
