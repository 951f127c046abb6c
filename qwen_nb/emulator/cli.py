"""``qwen-nb emulator``: serve the local Model Studio emulator until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import time


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="qwen-nb emulator",
        description="Run a local Model Studio emulator (OpenAI-compatible and native protocols, every region).",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
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
                   help="largest request body accepted (default 64 MiB); bigger ones get 400 InvalidParameter")
    p.add_argument("--client-timeout", type=float, default=None,
                   help="seconds a client may take to send its headers, or pause inside a body (default 10)")
    p.add_argument("--max-connections", type=int, default=None,
                   help="open connections served at once (default 1000); requests beyond get 503")
    p.add_argument("--replay", metavar="DIR",
                   help="answer only from the cassette DIR (recorded with qwen-nb record), not the emulator's replies")
    return p


def main(argv: list[str] | None = None) -> int:
    """Start the emulator, print its base URLs and demo keys, serve until interrupted."""
    args = _parser().parse_args(argv)
    if args.replay:
        from qwen_nb.recorder.cli import serve_replay

        return serve_replay(args.replay, args.host, args.port)
    from dataclasses import asdict

    from qwen_nb._secrets import mask_key
    from qwen_nb.emulator.config import Flags, demo_keys
    from qwen_nb.emulator.server import Emulator
    from qwen_nb.errors import QwenNbError

    try:
        emu = Emulator(args.config, ttft=args.ttft, tokens_per_second=args.tps, latency=args.latency,
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
    print(f"In a notebook: export QWEN_NB_EMULATOR={emu.url}   (Ctrl-C to stop)")
    sys.stdout.flush()
    try:
        while emu.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
