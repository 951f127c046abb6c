"""Which upstream each route of a recording stands for, and the environment that points a command at the proxy.

A route per configured profile (``default`` for ``DASHSCOPE_API_KEY``, ``team-a`` for
``QWEN_NB_TEAM_A_API_KEY`` ...) goes to that profile's host: its base URL if it has one, else
its workspace host or its region's shared host (``qwen_nb.facts``). The command run under
``qwen-nb record`` gets each profile's ``..._BASE_URL`` set to its route, and the raw SDKs'
own variables (``OPENAI_BASE_URL``, ``DASHSCOPE_HTTP_BASE_URL``) set to the default route,
so qwen-nb, the ``openai`` and ``dashscope`` SDKs and ``curl "$DASHSCOPE_BASE_URL/..."`` all
go through it. A replay sets the same variables to the replay server, with a placeholder key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qwen_nb import facts
from qwen_nb.errors import InputError

#: the key a replayed notebook is given: shaped like a key (so settings accept it), too short to be one
PLACEHOLDER_KEY = "sk-replay-only"
#: the route of the default profile (``DASHSCOPE_*``) and of raw SDK calls
DEFAULT_ROUTE = "default"
#: settings prefix of the default profile
DEFAULT_PREFIX = "DASHSCOPE"
#: the raw SDKs' own base-URL variables (under the default route): variable -> API path appended
SDK_BASE_VARS = {
    "OPENAI_BASE_URL": facts.COMPATIBLE_PATH,
    "DASHSCOPE_HTTP_BASE_URL": facts.NATIVE_PATH,
    "DASHSCOPE_COMPATIBLE_BASE_URL": facts.COMPATIBLE_PATH,
}


def profile_routes(upstream: str | None = None, env: Mapping[str, str] | None = None,
                   ) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """``(route -> upstream URL, route -> what it stands for)`` for the profiles configured now.

    ``upstream`` sends every route there instead (a gateway, or an emulator's region URL in tests).
    The route info holds no secret: the profile's name, region, settings prefix, and whether it
    had a workspace id (the id itself is not kept).
    """
    from qwen_nb._profiles import load_profiles
    from qwen_nb._regions import get_region
    from qwen_nb._settings import Settings

    profiles = load_profiles(env=env)
    conf = Settings(env=env, use_config=env is None)
    raw_names = {raw.lower().replace("_", "-"): raw for raw in conf.profile_names()}
    upstreams: dict[str, str] = {}
    info: dict[str, dict[str, Any]] = {}
    if upstream is not None and not str(upstream).startswith(("http://", "https://")):
        raise InputError(f"--upstream must be an http(s) URL, got {upstream!r}.",
                         fix="E.g. --upstream https://dashscope-intl.aliyuncs.com")
    for name, prof in profiles.items():
        prefix = DEFAULT_PREFIX if name == DEFAULT_ROUTE else f"QWEN_NB_{raw_names.get(name, name.upper())}"
        host = upstream or prof.base_url or get_region(prof.region).gateway(prof.workspace)
        upstreams[name] = str(host).rstrip("/")
        info[name] = {"profile": True, "env": prefix, "region": prof.region, "workspace": bool(prof.workspace)}
    if DEFAULT_ROUTE not in upstreams:  # raw SDK calls and curl still need a route
        region = get_region(conf.get("DASHSCOPE_REGION") or facts.DEFAULT_REGION)
        upstreams[DEFAULT_ROUTE] = str(upstream or conf.get("DASHSCOPE_BASE_URL") or region.host
                                       or facts.REGION_FACTS[0].host).rstrip("/")
        info[DEFAULT_ROUTE] = {"profile": False, "env": DEFAULT_PREFIX, "region": region.id, "workspace": False}
    return upstreams, info


def record_env(url: str, routes: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The variables that send a command's calls through the proxy at ``url`` (keys stay as they are)."""
    out: dict[str, str] = {}
    for name, info in routes.items():
        root = f"{url.rstrip('/')}/{name}"
        out[f"{info.get('env') or DEFAULT_PREFIX}_BASE_URL"] = root
        if name == DEFAULT_ROUTE:
            out.update({var: root + path for var, path in SDK_BASE_VARS.items()})
    return out


def replay_env(url: str, routes: Mapping[str, Mapping[str, Any]],
               environ: Mapping[str, str] | None = None) -> tuple[dict[str, str], list[str]]:
    """``(variables to set, variables to remove)`` so a command talks to the replay server at ``url``.

    Each recorded profile gets its base URL, region and a placeholder key, and the usage ledger is
    kept in memory; other keys, key commands, workspace ids and ``QWEN_NB_EMULATOR`` are removed.
    """
    out = record_env(url, routes)
    prefixes = set()
    for info in routes.values():
        prefix = str(info.get("env") or DEFAULT_PREFIX)
        prefixes.add(prefix)
        if info.get("profile"):
            out[f"{prefix}_API_KEY"] = PLACEHOLDER_KEY
            out[f"{prefix}_REGION"] = str(info.get("region") or facts.DEFAULT_REGION)
    if not (environ or {}).get("QWEN_NB_LEDGER"):  # replayed calls cost nothing: keep them out of the usage ledger
        out["QWEN_NB_LEDGER"] = ":memory:"
    drop = ["QWEN_NB_EMULATOR", "QWEN_NB_PROFILES", "DASHSCOPE_WORKSPACE_ID", "DASHSCOPE_API_KEY_FILE_PATH"]
    for name in environ if environ is not None else ():
        if facts.KEY_VAR.match(name) and name not in out:
            drop.append(name)
        elif name.endswith(("_API_KEY_COMMAND", "_WORKSPACE")) and name.startswith(("QWEN_NB_", "DASHSCOPE_")):
            drop.append(name)
    drop += [f"{p}_WORKSPACE" for p in prefixes]
    return out, sorted(set(drop) - set(out))
