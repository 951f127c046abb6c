"""``qwen-nb emulator``: serve the local Model Studio emulator until Ctrl-C; ``reset`` / ``usage`` for a teacher.

``--host`` picks the interface: the default 127.0.0.1 serves this machine only; ``--host 0.0.0.0``
serves the local network too (then the control endpoints need a teacher token, and the banner
shows the address other machines use, never 0.0.0.0). ``--classroom FILE`` serves a class written
by ``qwen-nb classroom init``. ``qwen-nb emulator reset|usage --url URL`` talk to a running one.
"""

from __future__ import annotations

import argparse
import sys

from qwen_nb._serve import serve_until_interrupted


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qwen-nb emulator",
        description="Run a local Model Studio emulator (OpenAI-compatible and native protocols, every region).",
        epilog="For a running emulator: 'qwen-nb emulator usage|reset --url URL [--token T | --classroom FILE]' "
        "(see 'qwen-nb emulator usage --help').",
    )
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default 127.0.0.1: this machine only; 0.0.0.0: the local network "
                   "too, with a teacher token for the control endpoints)")
    p.add_argument("--classroom", metavar="FILE",
                   help="serve a class: the classroom.toml of `qwen-nb classroom init` (its [classroom] table's "
                   "teacher token guards the control endpoints, the request log and usage)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--config", help="TOML file with [emulator] settings and [[workspace]] tables")
    p.add_argument("--ttft", type=float, default=None, help="seconds before the first token")
    p.add_argument("--tps", type=float, default=None, help="tokens per second while streaming")
    p.add_argument("--latency", type=float, default=None, help="extra fixed latency per request, seconds")
    p.add_argument("--rate-limit", type=int, default=None, help="requests per key per window (429 beyond)")
    p.add_argument("--rate-window", type=float, default=None, help="rate-limit window, seconds (default 60)")
    p.add_argument("--reply-tokens", type=int, default=None,
                   help="make text answers at least this many tokens long (still capped by max_tokens)")
    p.add_argument("--max-body-bytes", type=int, default=None,
                   help="largest request body accepted (default 6291456, the service's 6 MiB, refused with its 400 "
                   "error); bigger values allow bigger bodies, answered with the emulator's own 400")
    p.add_argument("--client-timeout", type=float, default=None,
                   help="seconds a client may take to send its headers, or pause inside a body (default 10)")
    p.add_argument("--max-connections", type=int, default=None,
                   help="open connections served at once (default 1000); requests beyond get 503")
    p.add_argument("--replay", metavar="DIR",
                   help="answer only from the cassette DIR (recorded with qwen-nb record), not the emulator's replies")
    return p


def main(argv: list[str] | None = None) -> int:
    """Start the emulator, print its base URLs and demo keys, serve until interrupted.

    ``reset`` and ``usage`` as the first argument talk to a running emulator instead (``teacher_main``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("reset", "usage"):
        return teacher_main(argv)
    args = _parser().parse_args(argv)
    if args.replay:
        from qwen_nb.recorder.cli import serve_replay

        return serve_replay(args.replay, args.host, args.port)
    if args.classroom and args.config:
        print("qwen-nb emulator: give --classroom FILE or --config FILE, not both (a class's file is its config).",
              file=sys.stderr)
        return 2
    from dataclasses import asdict

    from qwen_nb._secrets import mask_key
    from qwen_nb.emulator.config import Flags, demo_keys
    from qwen_nb.emulator.server import Emulator
    from qwen_nb.errors import QwenNbError

    try:
        if args.classroom:
            from qwen_nb.emulator.config import load_config

            if load_config(args.classroom).classroom is None:
                print(f"qwen-nb emulator: {args.classroom} has no [classroom] table; write a class's file with "
                      "`qwen-nb classroom init` (or pass it as --config).", file=sys.stderr)
                return 2
        emu = Emulator(args.classroom or args.config, ttft=args.ttft, tokens_per_second=args.tps, latency=args.latency,
                       rate_limit=args.rate_limit, rate_window=args.rate_window, reply_tokens=args.reply_tokens,
                       host=args.host, port=args.port, max_body_bytes=args.max_body_bytes,
                       **{k: v for k, v in (("client_timeout", args.client_timeout),
                                            ("max_connections", args.max_connections)) if v is not None})
        emu.start()
    except QwenNbError as exc:
        print(f"qwen-nb emulator: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the port is taken, or the address is not this machine's
        print(f"qwen-nb emulator: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}.\n"
              "How to fix: pick another port (--port 0 takes a free one) or stop what holds it.", file=sys.stderr)
        return 2
    if emu.config.classroom is not None:
        _class_banner(emu, args.classroom or args.config)
    else:
        _banner(emu, mask_key, demo_keys, asdict, Flags)
    sys.stdout.flush()
    return serve_until_interrupted(emu)


def _reach(emu) -> str:
    """The root URL to give others: the network address for a wildcard host, never 0.0.0.0."""
    url = emu.lan_url
    if emu.host in ("0.0.0.0", "::") and url == emu.url:
        return f"http://<this machine's address>:{emu.port}"
    return url


def _class_banner(emu, path: str) -> None:
    from qwen_nb.emulator.hosts import is_loopback

    cls = emu.config.classroom
    students = [ws for ws in emu.config.workspaces if ws.manage_grants and not ws.default]
    reach = _reach(emu)
    print(f"Class {cls.name!r}: {len(students)} student workspaces, emulator on {emu.url}")
    if is_loopback(emu.host):
        print("  It listens on loopback: only this machine reaches it (start it with --host 0.0.0.0 for the class).")
    print("Students put the two lines of their handout card into .env (or their environment):")
    print(f"  QWEN_NB_EMULATOR={reach}")
    print("  QWEN_NB_EMULATOR_KEY=<their own key>")
    if cls.url and cls.url.rstrip("/") != reach and not is_loopback(emu.host):
        print(f"  NOTE: the handouts say QWEN_NB_EMULATOR={cls.url}; write them again for this address:\n"
              f"    qwen-nb classroom handout {path} --url {reach}")
    print("The control endpoints, the request log and usage need the teacher token (in the class's file):")
    print(f"  qwen-nb emulator usage --classroom {path} --url {reach}")
    print(f"  qwen-nb emulator reset --classroom {path} --url {reach} [--workspace student-01]")
    print("Ctrl-C to stop.")


def _banner(emu, mask_key, demo_keys, asdict, Flags) -> None:
    public = demo_keys()  # the built-in demo keys are public; keys from a config file are shown masked
    p = emu.state.pacing
    print(f"Model Studio emulator on {emu.url}  (ttft {p.ttft}s, "
          f"{p.tokens_per_second or 'unpaced'} tokens/s, rate limit {p.rate_limit or 'off'})")
    print("Workspaces (these keys only work on this emulator; keys from a config file are shown masked):")
    for ws in emu.config.workspaces:
        models = "all models" if ws.models is None else ", ".join(ws.models)
        key = ws.keys[0] if ws.keys[0] in public else mask_key(ws.keys[0])
        print(f"  {ws.name:<12} {ws.region:<15} {ws.id}  key {key}  ({models})")
        changed = {k: v for k, v in asdict(ws.flags).items() if v != getattr(Flags(), k)}
        if changed or ws.key_flags:
            flags = ", ".join(f"{k}={v!r}" for k, v in changed.items()) or "none"
            print(f"  {'':<12} flags: {flags}" + (f"; {len(ws.key_flags)} key(s) with flags" if ws.key_flags else ""))
    print("Base URLs, e.g. Singapore:")
    print(f"  openai SDK:    {emu.base_url('ap-southeast-1', 'openai')}")
    print(f"  dashscope SDK: {emu.base_url('ap-southeast-1', 'dashscope')}")
    reach = _reach(emu)
    if emu.teacher_token is not None:
        print(f"Other machines reach it at {reach}; its control endpoints (faults, reset, the request log) need this "
              f"token:\n  {emu.teacher_token}   (qwen-nb emulator reset|usage --url {reach} --token ...)")
    print(f"In a notebook: export QWEN_NB_EMULATOR={reach}   (Ctrl-C to stop)")


def _teacher_parser(command: str):
    import argparse

    p = argparse.ArgumentParser(prog=f"qwen-nb emulator {command}",
                                description="Reset a running emulator (all of it, or one workspace)." if command ==
                                "reset" else "Calls, errors, tokens and estimated spend per workspace (student).")
    p.add_argument("--url", default=None,
                   help="the emulator's root URL (default: the class file's url, else http://127.0.0.1:8765)")
    p.add_argument("--token", default=None,
                   help="the teacher token (default: --classroom FILE's, else $QWEN_NB_TEACHER_TOKEN)")
    p.add_argument("--classroom", metavar="FILE", help="the class's classroom.toml (its teacher token and url)")
    p.add_argument("--workspace", default=None, help="only this workspace (a student's name, e.g. student-07)")
    if command == "usage":
        p.add_argument("--json", action="store_true", help="print the JSON the emulator answers")
    return p


def teacher_main(argv: list[str]) -> int:
    """``qwen-nb emulator reset|usage``: the teacher's commands, sent to a running emulator with the token."""
    import json
    import urllib.error
    import urllib.request

    from qwen_nb._secrets import mask_key
    from qwen_nb._settings import Settings
    from qwen_nb.errors import QwenNbError, scrub

    command, args = argv[0], _teacher_parser(argv[0]).parse_args(argv[1:])
    url, token = args.url, args.token
    if args.classroom:
        from qwen_nb.emulator.config import load_config

        try:
            cls = load_config(args.classroom).classroom
        except QwenNbError as exc:
            print(f"qwen-nb emulator {command}: {exc}", file=sys.stderr)
            return 2
        if cls is None:
            print(f"qwen-nb emulator {command}: {args.classroom} has no [classroom] table.", file=sys.stderr)
            return 2
        token = token or cls.teacher_token
        url = url or cls.url
    token = token or Settings().get("QWEN_NB_TEACHER_TOKEN")
    url = (url or "http://127.0.0.1:8765").rstrip("/")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if command == "reset":
        body = json.dumps({"workspace": args.workspace}).encode() if args.workspace else b""
        req = urllib.request.Request(url + "/_emulator/reset", data=body, method="POST",
                                     headers={**headers, "Content-Type": "application/json"})
    else:
        req = urllib.request.Request(url + "/_emulator/usage", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            data = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        exc.close()
        hint = (" Give the teacher token: --token, --classroom FILE or QWEN_NB_TEACHER_TOKEN."
                if exc.code in (401, 403) else "")
        shown = f" (token {mask_key(token)})" if token and exc.code in (401, 403) else ""
        print(f"qwen-nb emulator {command}: {url} answered HTTP {exc.code}{shown}: {scrub(detail)}{hint}",
              file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"qwen-nb emulator {command}: {url} does not answer: {getattr(exc, 'reason', None) or exc}.",
              file=sys.stderr)
        return 1
    if command == "reset":
        print(f"Reset {'workspace ' + args.workspace if args.workspace else 'the emulator'} at {url}: grants, "
              "flags, usage and budgets back to the configured ones" + ("" if args.workspace else ", log cleared")
              + ".")
        return 0
    if args.workspace:
        data = {k: v for k, v in data.items() if k == args.workspace}
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"{'workspace':<14} {'calls':>6} {'errors':>6} {'in tokens':>10} {'out tokens':>10} {'cost':>9} "
          f"{'budget':>7}  granted now")
    for name, u in data.items():
        budget = "-" if u.get("budget") is None else f"{u['budget']:g}"
        granted = "all" if u.get("granted_now") is None else ", ".join(u["granted_now"])
        print(f"{name:<14} {u['calls']:>6} {u['errors']:>6} {u['input_tokens']:>10} {u['output_tokens']:>10} "
              f"{u['cost']:>9.4f} {budget:>7}  {granted}")
    total = {k: sum(u[k] for u in data.values()) for k in ("calls", "errors", "input_tokens", "output_tokens")}
    print(f"{'total':<14} {total['calls']:>6} {total['errors']:>6} {total['input_tokens']:>10} "
          f"{total['output_tokens']:>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
