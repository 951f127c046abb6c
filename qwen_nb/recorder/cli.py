"""``qwen-nb record -- COMMAND`` and ``qwen-nb emulator --replay DIR``: record calls into a cassette, serve it back."""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

from qwen_nb._serve import serve_until_interrupted
from qwen_nb.errors import QwenNbError, scrub
from qwen_nb.recorder.cassette import CASSETTE_SUFFIX, Cassette, cassette_dir
from qwen_nb.recorder.proxy import RecordingProxy, ReplayServer
from qwen_nb.recorder.routes import profile_routes, record_env, replay_env


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qwen-nb record",
        description="Run COMMAND with every Model Studio call going through a local recording proxy, and store "
        "the calls and answers (keys and workspace ids redacted) as a cassette beside the notebook.",
        epilog="Example: qwen-nb record -- jupyter nbconvert --to notebook --execute --inplace analysis.ipynb "
        "(writes analysis.cassettes/). Replay it: pytest --nbval --qwen-replay analysis.ipynb",
    )
    p.add_argument("--cassette", help="the cassette folder to write (default: NAME.cassettes beside the first "
                   ".ipynb or .py file COMMAND names)")
    p.add_argument("--upstream", help="send every call to this URL instead of each profile's Model Studio host "
                   "(a gateway; in tests an emulator's region URL such as http://127.0.0.1:8765/ap-southeast-1)")
    p.add_argument("--port", type=int, default=0, help="port of the proxy on 127.0.0.1 (default: a free one)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after --")
    return p


def _environment() -> dict[str, str]:
    """A copy of this process's environment (read through the settings module, as everywhere)."""
    from qwen_nb._settings import Settings

    return Settings(use_dotenv=False, use_config=False).env


def guess_cassette(command: list[str]) -> Path | None:
    """The cassette folder of the first notebook (or script) a command names."""
    for arg in command:
        if arg.endswith((".ipynb", ".py")) and not arg.startswith("-"):
            return cassette_dir(arg)
    return None


def main(argv: list[str] | None = None) -> int:
    """Record: start the proxy, run the command with its variables set, report what was stored."""
    args = _parser().parse_args(argv)
    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        print("qwen-nb record: give the command to run after --, e.g. qwen-nb record -- jupyter nbconvert "
              "--execute --inplace analysis.ipynb", file=sys.stderr)
        return 2
    folder = Path(args.cassette) if args.cassette else guess_cassette(command)
    if folder is None:
        print("qwen-nb record: COMMAND names no .ipynb or .py file: say where to store the calls with "
              f"--cassette DIR (by convention NAME{CASSETTE_SUFFIX} beside the notebook).", file=sys.stderr)
        return 2
    try:
        upstreams, routes = profile_routes(args.upstream)
        proxy = RecordingProxy(folder, upstreams, routes, command=shlex.join(command), port=args.port)
        proxy.start()
    except QwenNbError as exc:
        print(f"qwen-nb record: {exc}", file=sys.stderr)
        return 2
    if not any(r.get("profile") for r in routes.values()):
        print("qwen-nb record: no key is configured (DASHSCOPE_API_KEY / QWEN_NB_<NAME>_API_KEY): qwen_nb.connect() "
              "would use the emulator and nothing it does is recorded; raw SDK calls still go through the proxy.",
              file=sys.stderr)
    env = _environment()  # the command's environment: this one, plus the proxy's base URLs
    env.update(record_env(proxy.url, routes))
    shown = ", ".join(f"{name} -> {url}" for name, url in upstreams.items())
    print(f"qwen-nb record: proxy at {proxy.url} ({shown}); recording into {folder}", file=sys.stderr)
    t0 = time.perf_counter()
    try:
        rc = subprocess.call(command, env=env)
    except OSError as exc:
        print(f"qwen-nb record: cannot run {command[0]!r}: {exc.strerror or exc}", file=sys.stderr)
        rc = 127
    finally:
        proxy.stop()
    n = len(proxy.cassette.interactions)
    size = sum(p.stat().st_size for p in proxy.cassette.files() if p.exists())
    print(f"qwen-nb record: {n} call(s) recorded into {folder} ({size} bytes, keys and workspace ids redacted) "
          f"in {time.perf_counter() - t0:.1f} s; command exit status {rc}. Commit the folder with the notebook; "
          f"replay it with: pytest --nbval --qwen-replay", file=sys.stderr)
    return rc


def serve_replay(folder: str, host: str = "127.0.0.1", port: int = 8765) -> int:
    """``qwen-nb emulator --replay DIR``: answer from a cassette until Ctrl-C; prints the variables to set."""
    try:
        cassette = Cassette.load(folder)
        server = ReplayServer(cassette, host=host, port=port).start()
    except QwenNbError as exc:
        print(f"qwen-nb emulator --replay: {scrub(exc)}", file=sys.stderr)
        return 2
    env, drop = replay_env(server.url, cassette.routes, _environment())
    print(f"Replaying {folder} ({len(cassette.interactions)} recorded call(s)) on {server.url}: nothing leaves "
          "this machine; a call with no recording gets a 409 NotRecorded error naming it.")
    print("Point a notebook's kernel at it (bash):")
    for name in drop:
        print(f"  unset {name}")
    for name, value in env.items():
        print(f"  export {name}={value}")
    print("(Ctrl-C to stop)")
    sys.stdout.flush()
    return serve_until_interrupted(server)


if __name__ == "__main__":
    sys.exit(main())
