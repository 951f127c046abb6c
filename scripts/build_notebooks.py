"""Build the tutorial notebooks in notebooks/ from the Python source in this file, then run them.

    .venv/bin/python scripts/build_notebooks.py              # write every notebook and record its outputs
    .venv/bin/python scripts/build_notebooks.py 04 07        # only notebooks whose name starts with 04 or 07
    .venv/bin/python scripts/build_notebooks.py --changed    # only notebooks whose cells differ from this file
    .venv/bin/python scripts/build_notebooks.py --no-execute # write the cells only (outputs empty)

The notebooks are written with nbformat (stable cell ids, kernelspec ``python3``) and executed
with nbclient against one fresh local emulator (``QWEN_NB_EMULATOR``), in name order, the way
``pytest --nbval notebooks`` runs them. No key may be configured while recording: the outputs
must be the emulator's deterministic ones. Identifiers that change on every run (loopback
ports, request ids, memory addresses) are written with the same placeholders the nbval
sanitize rules produce, so a rebuild only changes what really changed. Every written notebook
is scanned for API keys (emulator demo keys included) before it is saved.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = ROOT / "notebooks"
KERNEL = "python3"
CELL_TIMEOUT = 120

# Replacements applied to recorded outputs: the same placeholders as qwen_nb/data/nbval_sanitize.cfg.
STABLE_OUTPUT = [
    (re.compile(r"chatcmpl-[A-Za-z0-9_-]+"), "chatcmpl-<ID>"),
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<UUID>"),
    (re.compile(r"(https?://(127\.0\.0\.1|localhost|\[::1\])):\d+"), r"\1:<PORT>"),
    (re.compile(r"\b0x[0-9a-fA-F]{6,16}\b"), "0x<ADDR>"),
    (re.compile(r"/tmp/ipykernel_\d+/\d+\.py"), "<CELL>"),
]


@dataclass
class Cell:
    kind: str  # "markdown" | "code"
    source: str
    tags: list[str] = field(default_factory=list)


def md(text: str) -> Cell:
    """A Markdown cell (dedented, stripped)."""
    return Cell("markdown", textwrap.dedent(text).strip("\n"))


def code(text: str, *tags: str) -> Cell:
    """A code cell (dedented, stripped); ``tags`` become cell metadata tags (e.g. nbval-ignore-output)."""
    return Cell("code", textwrap.dedent(text).strip("\n"), list(tags))


# Cells shared by several notebooks ------------------------------------------------------------

CONNECT = code(
    """
    import qwen_nb as q

    s = q.connect()  # profiles from the environment / .env; with no key at all: the local emulator
    print("Running on", "the local emulator" if s.on_emulator else "Alibaba Cloud Model Studio")
    """
)

PICK_PROFILES = code(
    """
    home = s.get_profile()  # the default profile (DASHSCOPE_API_KEY, or the emulator's "default")
    # a sub-workspace profile in the same region that may call qwen-plus (as far as its QWEN_NB_<NAME>_MODELS says)
    subs = [p for p in s.profiles() if p.name != home.name and p.region == home.region
            and (p.models is None or "qwen-plus" in p.models)]
    sub = subs[0] if subs else home
    print(f"default profile: {home.name} ({home.region})")
    print(f"sub-workspace profile: {sub.name} (workspace {sub.workspace or 'id not set'})")
    if sub is home:
        print("No sub-workspace profile is configured (see notebook 01): the default profile stands in.")
    """
)

# The notebooks ----------------------------------------------------------------------------------

NOTEBOOKS: dict[str, list[Cell]] = {}

NOTEBOOKS["00_quickstart"] = [
    md(
        """
        # 00 · Quickstart: one call in three lines

        qwen-nb calls Alibaba Cloud Model Studio (Qwen models) from a notebook. With an API key in
        the environment (`DASHSCOPE_API_KEY`) or in a `.env` file, calls go to the service. With no
        key anywhere, qwen-nb uses a **local emulator** instead: same endpoints, same errors,
        canned answers, no network and no cost. Every notebook in this folder runs either way.
        """
    ),
    code(
        """
        import qwen_nb as q

        answer = q.chat("Who are you?")
        answer
        """
    ),
    md(
        """
        The first call made a default session (`q.connect()`) and said where it is talking to.
        The answer is a `ChatResult`: it shows as Markdown with a footer line (model, profile,
        region, API, tokens, latency and estimated cost), and it keeps all of that as attributes.
        """
    ),
    code(
        """
        from qwen_nb import default_session

        s = default_session()  # the session q.chat() made
        print("Running on:", "the local emulator (canned answers, no cost)" if s.on_emulator else "Model Studio")
        print("Profile:", answer.profile, "· region:", answer.region, "· model:", answer.model, "· api:", answer.api)
        print("Base URL:", s.region(answer.profile).compatible_base())
        """
    ),
    code(
        """
        print(answer.text)
        print(answer.usage.line())
        if answer.cost is not None:
            print(f"estimated cost: {answer.cost:.6f} {answer.currency}")
        """
    ),
    md(
        """
        ## Parameters, other models, the other API

        `chat()` takes the usual parameters (`system`, `temperature`, `max_tokens`, `seed`, `stop`,
        ...), a `model`, a `profile` (which workspace key to use) and an `api`: `"openai"` (the
        OpenAI-compatible endpoint, default) or `"dashscope"` (the native endpoint).
        """
    ),
    code(
        """
        q.chat("What is the capital of France?", system="Answer in one sentence.", temperature=0.2, api="dashscope")
        """
    ),
    md(
        """
        ## The `%%qwen` cell magic

        `%load_ext qwen_nb` adds `%%qwen`: the cell body is the prompt. `{name}` inserts a notebook
        variable; `-m` picks the model, `-p` the profile, `-o` stores the result in a variable.
        """
    ),
    code("%load_ext qwen_nb"),
    code(
        """
        %%qwen -o haiku
        Write a haiku about the sea
        """
    ),
    code(
        """
        print(haiku.usage.line())
        """
    ),
    code("%qwen_profiles"),
    md(
        """
        ## Using your own key

        Put your key in the environment or in a `.env` file next to the notebooks (never in a
        notebook), then restart the kernel:

        ```
        DASHSCOPE_API_KEY=sk-...
        DASHSCOPE_REGION=ap-southeast-1
        ```

        Keys are per region: a key made in the Singapore console works only with the Singapore
        endpoints (`DASHSCOPE_REGION=ap-southeast-1`), a Beijing key only with `cn-beijing`. Next:
        [01 · sub-workspaces](01_sub_workspace_setup.ipynb) for several keys at once.
        """
    ),
]

NOTEBOOKS["01_sub_workspace_setup"] = [
    md(
        """
        # 01 · Sub-workspaces: setup, keys, regions, permissions

        A Model Studio account starts with a **default workspace**: its API keys can call every
        model. **Sub-workspaces** are for two things:

        * **Model access control** — a sub-workspace's key can call only the models granted to
          that workspace, so a team or an application gets exactly the models it needs.
        * **Cost split** — calls are billed per workspace, so each team, service or experiment
          gets its own bill.

        Calling a model from a sub-workspace is the same request as from the default one; only
        the key differs (and optionally the host, see below).
        """
    ),
    md(
        """
        ## In the console

        1. In the Model Studio console, pick the **region** first: the workspaces and API keys
           you create there belong to that region (Singapore, Beijing, ...).
        2. Create a workspace in the workspace management page and add the members (RAM users)
           who should use it.
        3. With that workspace selected, create an API key on the API-key page. The key belongs
           to this workspace **and this region**.
        4. Grant models to the workspace (its model permissions / authorization page). Until a
           model is granted, the workspace key gets `403 Model.AccessDenied` for it.
        5. Note the workspace id (`llm-...`): qwen-nb uses it for the workspace gateway and to
           group costs.
        """
    ),
    md(
        """
        ## Regions

        A key works only in the region (and billing plan) it was created in. Most regions have a
        shared host that any workspace's key of the region may call; every workspace also has its own
        host, `https://{WorkspaceId}.{region}.maas.aliyuncs.com`, and Germany (Frankfurt) and Japan
        (Tokyo) have only those, so a profile there needs its workspace id.
        """
    ),
    code(
        """
        import qwen_nb as q

        for r in q.regions().values():
            base = r.compatible_base() if r.host else r.compatible_base("{WorkspaceId}") + "  (workspace host only)"
            print(f"{r.id:15} {r.label:27} {base}")
        """
    ),
    md(
        """
        Which models a region offers (qwen-nb's catalog; the service's own list is the authority):
        """
    ),
    code(
        """
        for region in ("ap-southeast-1", "cn-beijing"):
            print(region, "->", ", ".join(m.id for m in q.models(region)))
        """
    ),
    md(
        """
        ## Several keys in `.env`

        The default profile comes from the SDKs' own variables, so an existing setup keeps
        working. Each sub-workspace gets a **named profile**: `QWEN_NB_<NAME>_API_KEY` (required)
        and optionally `_REGION`, `_WORKSPACE`, `_MODELS` (the grants, if you know them) and
        `_BUDGET` (in the region's currency). `<NAME>` becomes the profile name in lower case,
        with `_` turned into `-`.

        ```
        # default workspace, Singapore
        DASHSCOPE_API_KEY=sk-...
        DASHSCOPE_REGION=ap-southeast-1

        # sub-workspace of team A, Singapore
        QWEN_NB_TEAM_A_API_KEY=sk-...
        QWEN_NB_TEAM_A_REGION=ap-southeast-1
        QWEN_NB_TEAM_A_WORKSPACE=llm-...
        QWEN_NB_TEAM_A_MODELS=qwen-plus,qwen-flash
        QWEN_NB_TEAM_A_BUDGET=5

        # a sub-workspace in Beijing (its key comes from the Beijing console)
        QWEN_NB_BEIJING_LAB_API_KEY=sk-...
        QWEN_NB_BEIJING_LAB_REGION=cn-beijing
        ```

        Keep `.env` out of version control. Here is how qwen-nb reads such a file — with
        placeholder keys, in a temporary folder:
        """
    ),
    code(
        """
        import tempfile
        from pathlib import Path

        from qwen_nb import load_profiles
        from qwen_nb import ProfileTable

        example = '''
        DASHSCOPE_API_KEY=sk-example0001
        QWEN_NB_TEAM_A_API_KEY=sk-example0002
        QWEN_NB_TEAM_A_WORKSPACE=llm-example
        QWEN_NB_TEAM_A_MODELS=qwen-plus,qwen-flash
        QWEN_NB_TEAM_A_BUDGET=5
        QWEN_NB_BEIJING_LAB_API_KEY=sk-example0003
        QWEN_NB_BEIJING_LAB_REGION=cn-beijing
        '''
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / ".env"
            path.write_text(example)
            parsed = load_profiles(env={}, dotenv_path=path)  # env={}: ignore this kernel's environment
        ProfileTable(parsed.values())
        """
    ),
    md(
        """
        Keys are only ever shown masked (`sk-…0002`). Now the profiles of this kernel — your
        own, or the emulator's demo workspaces when no key is set:
        """
    ),
    CONNECT,
    code("q.profiles()"),
    md(
        """
        ## Checking the keys

        Listing the models a key can see uses no tokens and proves that the key works in its
        region.
        """
    ),
    code(
        """
        from qwen_nb.errors import QwenNbError

        for p in s.profiles():
            try:
                seen = s.list_models(p.name)
                print(f"{p.name:12} {p.region:15} key OK, {len(seen)} models visible")
            except QwenNbError as err:
                print(f"{p.name:12} {p.region:15} {type(err).__name__}: {err.message}")
        """
    ),
    md(
        """
        ## Granting a model by API

        Besides the console, a workspace's model permissions can be changed by API:
        `POST /api/v1/models/permissions` on the **workspace gateway**
        `https://{WorkspaceId}.{region}.maas.aliyuncs.com`, with a body such as
        `{"models": [{"model": "qwen-turbo", "inference": true}], "access_all_entities": "KEEP"}`
        (`KEEP` changes only the listed models, 1 to 20 of them; `OPEN` grants all, `CLOSE`
        revokes all; `"inference": false` revokes one).

        First, a model the sub-workspace was not granted:
        """
    ),
    PICK_PROFILES,
    code(
        """
        candidates = ["qwen-turbo", "qwen-max"]
        model = next((m for m in candidates if sub.models is not None and m not in sub.models), candidates[0])


        def try_call():
            try:
                r = s.chat("Say hello", model=model, profile=sub.name)
                print(f"{sub.name} -> {model}: allowed ({r.text})")
            except QwenNbError as err:
                print(f"{sub.name} -> {model}: {type(err).__name__} (HTTP {err.status} {err.code})")


        try_call()
        """
    ),
    md(
        """
        The request that grants it. On the emulator it is sent; on the real service this cell
        only prints it — changing permissions is an administrator's decision, so set
        `SEND = True` yourself if you mean it.
        """
    ),
    code(
        """
        import json

        import httpx

        SEND = s.on_emulator


        def set_permission(profile, model, inference):
            \"\"\"POST /api/v1/models/permissions on the profile's workspace gateway (key sent, never shown).\"\"\"
            if not profile.workspace:
                print(f"Profile {profile.name!r} has no workspace id: set QWEN_NB_<NAME>_WORKSPACE to use the gateway.")
                return None
            url = s.region(profile.name).gateway(profile.workspace) + "/api/v1/models/permissions"
            body = {"models": [{"model": model, "inference": inference}], "access_all_entities": "KEEP"}
            print("POST", url)
            print(json.dumps(body))
            if not SEND:
                print("(not sent)")
                return None
            reply = httpx.post(url, json=body, headers={"Authorization": f"Bearer {profile.key}"}, timeout=30)
            print("HTTP", reply.status_code)
            return reply.json()


        set_permission(sub, model, True)
        """
    ),
    code("try_call()"),
    md("Revoke it again (`\"inference\": false`), so the next notebooks find the workspace as it was:"),
    code(
        """
        set_permission(sub, model, False)
        try_call()
        """
    ),
    md(
        """
        Next: [02 · the OpenAI-compatible endpoint](02_openai_compatible.ipynb).
        """
    ),
]

NOTEBOOKS["02_openai_compatible"] = [
    md(
        """
        # 02 · The OpenAI-compatible endpoint

        Model Studio speaks the OpenAI chat-completions protocol under
        `{host}/compatible-mode/v1`, so the official `openai` SDK works with a Model Studio key
        and base URL. qwen-nb uses that SDK for `api="openai"` (its default).
        """
    ),
    CONNECT,
    PICK_PROFILES,
    md("## Through qwen-nb"),
    code(
        """
        r = s.chat("Who are you?", api="openai", profile=sub.name)
        r
        """
    ),
    md(
        """
        The SDK's own response object is kept in `r.raw`, for anything qwen-nb does not surface:
        """
    ),
    code(
        """
        print(type(r.raw).__module__ + "." + type(r.raw).__name__)
        print(r.raw.choices[0].finish_reason, r.raw.usage.prompt_tokens, r.raw.usage.completion_tokens)
        """
    ),
    md(
        """
        ## By hand, with the `openai` SDK

        The same call without qwen-nb. The base URL comes from the profile's region (and its
        workspace gateway when a workspace id is set). The key is passed to the client and never
        printed; outside qwen-nb you would write `api_key=os.getenv("DASHSCOPE_API_KEY")`.
        """
    ),
    code(
        """
        from openai import OpenAI

        base_url = s.region(sub.name).compatible_base(sub.workspace)
        print("base_url:", base_url)

        client = OpenAI(api_key=sub.key, base_url=base_url)
        completion = client.chat.completions.create(
            model="qwen-plus",
            messages=[
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Who are you?"},
            ],
        )
        print(completion.choices[0].message.content)
        print(completion.usage.prompt_tokens, "in ·", completion.usage.completion_tokens, "out")
        """
    ),
    md(
        """
        Streaming by hand: `stream=True`, and `stream_options={"include_usage": True}` adds a last
        chunk with the token counts. Qwen-specific options that the SDK has no argument for go in
        `extra_body` — e.g. `enable_thinking` (open-source Qwen3 models think by default and then
        refuse non-streaming calls; commercial ones do not think unless asked).
        """
    ),
    code(
        """
        stream = client.chat.completions.create(
            model="qwen-plus",
            messages=[{"role": "user", "content": "Write a haiku about the sea"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"enable_thinking": False},
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="")
            if chunk.usage:
                print(f"\\n[{chunk.usage.total_tokens} tokens]")
        """
    ),
    md("The models this key can see (`GET /compatible-mode/v1/models`):"),
    code(
        """
        print(sorted(m.id for m in client.models.list()))
        """
    ),
    md(
        """
        ## The same call as code to copy

        `q.snippet()` writes the current call in Python (either SDK), curl, Node.js, Java, Go,
        C# or PHP. The key is read from `DASHSCOPE_API_KEY`; on the emulator the snippet also
        names the service's URL.
        """
    ),
    code(
        """
        q.snippet(language="python", api="openai", profile=sub.name)
        """
    ),
    code(
        """
        q.snippet(language="curl", api="openai", profile=sub.name)
        """
    ),
    md(
        """
        Errors of the `openai` SDK (`openai.PermissionDeniedError`, `openai.AuthenticationError`,
        ...) become qwen-nb's guided errors when the call goes through qwen-nb: see
        [04 · permissions and errors](04_permissions_and_errors.ipynb). Next:
        [03 · the native DashScope endpoint](03_dashscope_native.ipynb).
        """
    ),
]

NOTEBOOKS["03_dashscope_native"] = [
    md(
        """
        # 03 · The native DashScope endpoint

        Model Studio's own protocol lives under `{host}/api/v1`: text models at
        `/services/aigc/text-generation/generation`, vision models at
        `/services/aigc/multimodal-generation/generation`. The `dashscope` SDK speaks it; qwen-nb
        uses the SDK's 2.x client for `api="dashscope"`.
        """
    ),
    CONNECT,
    PICK_PROFILES,
    md("## Through qwen-nb"),
    code(
        """
        r = s.chat("Who are you?", api="dashscope", profile=sub.name)
        r
        """
    ),
    code(
        """
        stream = s.stream_chat("Write a haiku about the sea", api="dashscope", profile=sub.name)
        for delta in stream:
            print(delta.content, end="")
        print()
        print(stream.result.usage.line())
        """
    ),
    md(
        """
        Same `ChatResult`, whichever endpoint: code written for one API runs on the other by
        changing `api=` (or `q.connect(default_api="dashscope")` for the whole session).

        ## By hand: `dashscope.Generation.call`

        The classic 1.x call. Pass the region's base URL **per call** with `base_address`: the
        module-wide `dashscope.base_http_api_url` would be shared by every call in the kernel,
        which goes wrong as soon as two regions are in use.
        """
    ),
    code(
        """
        from dashscope import Generation

        base = s.region(sub.name).native_base(sub.workspace)
        print("base_address:", base)

        response = Generation.call(
            api_key=sub.key,  # outside qwen-nb: os.getenv("DASHSCOPE_API_KEY")
            base_address=base,
            model="qwen-plus",
            messages=[
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Who are you?"},
            ],
            result_format="message",
        )
        print(response.status_code)
        print(response.output.choices[0].message.content)
        print(response.usage)
        """
    ),
    md(
        """
        Streaming with `Generation.call`: `stream=True` with `incremental_output=True` (each event
        carries only the new text).
        """
    ),
    code(
        """
        for event in Generation.call(
            api_key=sub.key,
            base_address=base,
            model="qwen-plus",
            messages=[{"role": "user", "content": "Count from 1 to 10"}],
            result_format="message",
            stream=True,
            incremental_output=True,
        ):
            print(event.output.choices[0].message.content, end="")
        print()
        """
    ),
    md(
        """
        ## By hand: the 2.x `dashscope.Client`

        A client object carries its own key, base URL, region and workspace, so clients for
        several regions live side by side.
        """
    ),
    code(
        """
        import dashscope

        client = dashscope.Client(api_key=sub.key, base_url=base, region=sub.region, workspace=sub.workspace or "")
        reply = client.chat.completions.create(
            model="qwen-plus",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
        )
        print(reply.choices[0].message.content)
        print(reply.usage)
        """
    ),
    md(
        """
        ## On the wire

        The native body nests the messages under `input` and the options under `parameters`;
        the answer comes back under `output`, with `usage` and a `request_id`:
        """
    ),
    code(
        """
        import json

        import httpx

        body = {
            "model": "qwen-plus",
            "input": {"messages": [{"role": "user", "content": "What is 2+2"}]},
            "parameters": {"result_format": "message"},
        }
        http = httpx.post(
            base + "/services/aigc/text-generation/generation",
            json=body,
            headers={"Authorization": f"Bearer {sub.key}"},
            timeout=60,
        )
        print(json.dumps(http.json(), indent=2))
        """
    ),
    md("The same call as code to copy, for the native endpoint:"),
    code(
        """
        q.snippet(language="python", api="dashscope", profile=sub.name)
        """
    ),
    md("Next: [04 · permissions and errors](04_permissions_and_errors.ipynb)."),
]

NOTEBOOKS["04_permissions_and_errors"] = [
    md(
        """
        # 04 · Permissions and errors

        Every failure qwen-nb raises is a `QwenNbError` subclass whose message says **who**
        (profile, masked key, workspace), **where** (region, endpoint), **what** went wrong and
        **how to fix it**; `status`, `code` and `request_id` are kept for a support ticket.
        This notebook causes the common ones on purpose and catches them so it runs top to bottom.
        """
    ),
    CONNECT,
    PICK_PROFILES,
    code(
        """
        from qwen_nb import errors
        from qwen_nb.errors import QwenNbError


        def attempt(prompt="Who are you?", **kw):
            \"\"\"Make a call; return the error instead of raising it, so the notebook goes on.\"\"\"
            try:
                result = s.chat(prompt, **kw)
            except QwenNbError as err:
                return err
            print("No error this time:", result.footer())
            return result
        """
    ),
    md(
        """
        ## 1. A model the sub-workspace was not granted

        The service answers `403 Model.AccessDenied` "Model access denied." (the same code on both
        endpoints). qwen-nb turns it into `ModelNotGrantedError` and names your profiles that *can*
        call it.
        """
    ),
    code(
        """
        candidates = ["qwen-max", "qwen3-max", "qwen-turbo"]
        not_granted = next((m for m in candidates if sub.models is not None and m not in sub.models), candidates[0])
        denied = attempt(model=not_granted, profile=sub.name)
        denied
        """
    ),
    code(
        """
        if isinstance(denied, QwenNbError):
            print("an AccessDeniedError:", isinstance(denied, errors.AccessDeniedError))
            print("HTTP", denied.status, denied.code, "· retryable:", denied.retryable)
            print("for a support ticket: request id", "present" if denied.request_id else "missing")
        """
    ),
    md(
        """
        **Fix:** grant the model to the workspace (console, or the permissions API shown in
        [01](01_sub_workspace_setup.ipynb)), or call it with a profile that has it. `probe()` finds
        out who may call what with the cheapest possible calls (one word in, one token out):
        """
    ),
    code(
        """
        from qwen_nb import probe

        probe(models=["qwen-plus", not_granted, "qwen-turbo"])
        """
    ),
    md(
        """
        `compare()` asks the same prompt through several models × profiles × APIs at once; a cell
        that fails keeps its guided error while the others answer:
        """
    ),
    code(
        """
        from qwen_nb import compare

        compare("Who are you?", models=[not_granted], profiles=[sub.name, home.name])
        """
    ),
    md(
        """
        In code, catch the specific class and fall back:
        """
    ),
    code(
        """
        def ask(prompt, model, profile_names):
            for name in profile_names:
                try:
                    return s.chat(prompt, model=model, profile=name)
                except errors.ModelNotGrantedError:
                    print(f"{name}: not granted {model}, trying the next profile")
            raise LookupError(f"none of {profile_names} may call {model}")


        print(ask("What is 2+2", not_granted, [sub.name, home.name]).text)
        """
    ),
    md(
        """
        ## 2. A key used in the wrong region

        Keys are per region: a Singapore key sent to Beijing is refused with
        `401 InvalidApiKey` — the same answer as a mistyped key. The message says which region
        the call went to and which of your profiles use another one. (Here the default key is
        declared in the other region on purpose; the other region's host refuses it.)
        """
    ),
    code(
        """
        other = "cn-beijing" if home.region != "cn-beijing" else "ap-southeast-1"
        s.add_profile("misplaced", home.key, region=other)  # the default key, declared in the wrong region
        wrong_region = attempt(profile="misplaced")
        s.remove_profile("misplaced")
        wrong_region
        """
    ),
    md(
        """
        **Fix:** set the profile's region to the console the key came from
        (`DASHSCOPE_REGION` / `QWEN_NB_<NAME>_REGION`), or create a key in the region you need.

        ## 3. An unknown model

        A misspelt model gets `404` (`ModelNotFound` / `model_not_found`); qwen-nb suggests the
        closest name it knows. The same error comes for a model not offered in the key's region.
        """
    ),
    code(
        """
        attempt(model="qwen-plsu")
        """
    ),
    md(
        """
        ## 4. Bad input never leaves the notebook

        Values the service would reject are caught before any request, as `InputError`:
        """
    ),
    code(
        """
        attempt(temperature=5)
        """
    ),
    md(
        """
        ## 5. Throttling and retries

        Too many requests get `429 Throttling` (`limit_requests`); qwen-nb retries those (and
        5xx answers, and dropped connections) with exponential backoff, then raises
        `RateLimitError`. Throttling cannot be caused on demand on the real service without
        hammering it, so this part always uses a private local emulator, limited to 2 requests
        a minute, and a session with retries off:
        """
    ),
    code(
        """
        with q.Emulator(rate_limit=2, rate_window=60) as emu:
            local = q.Session(emu.profiles(), regions=emu.regions(), ledger=q.Ledger(":memory:"), max_retries=0)
            throttled = None
            for i in range(1, 4):
                try:
                    print(i, local.chat("Say hello").text)
                except errors.RateLimitError as err:
                    print(i, type(err).__name__)
                    throttled = err
            local.close()
        throttled
        """
    ),
    md(
        """
        **Fix:** slow down (`chat_many(concurrency=...)`), spread the work over workspaces, or ask
        for a higher limit. `QuotaExceededError` (`Throttling.AllocationQuota`,
        `insufficient_quota`) is a used-up quota rather than a rate and is not retried.

        Retries are automatic. Here the emulator answers `500` once, and the session's retry
        notes are sent to this notebook through the `qwen_nb` logger:
        """
    ),
    code(
        """
        import logging
        import sys

        notes = logging.StreamHandler(sys.stdout)
        logging.getLogger("qwen_nb").addHandler(notes)
        with q.Emulator() as emu:
            emu.set_faults(fail_next=1)
            local = q.Session(emu.profiles(), regions=emu.regions(), ledger=q.Ledger(":memory:"), max_retries=3)
            result = local.chat("Say hello")
            local.close()
        logging.getLogger("qwen_nb").removeHandler(notes)
        print(result.text, f"({result.attempts} attempts)")
        """
    ),
    md(
        """
        ## More of the service's answers

        The emulator can give every documented answer, per workspace or per key
        (`emu.set_workspace(name, free_tier_only=True)`, `budget_exhausted=True`, `subscribed=False`,
        `tokens_per_minute=...`, `blocked_words_input=[...]`, ...), so you can see how each one looks
        before you meet it for real. Note which ones qwen-nb retries: only those where the service
        means "try again".
        """
    ),
    code(
        """
        kinds = [
            {"free_tier_only": True},     # the free tier is used up while "use free tier only" is on
            {"budget_exhausted": True},   # the console's Budget Management stopped calls
            {"subscribed": False},        # the workspace is not subscribed (a 429 that is no rate limit)
            {"tokens_per_minute": 10},    # tokens per minute: wait and try again
            {"blocked_words_input": ["hello"]},  # content moderation of the input
        ]
        with q.Emulator() as emu:
            local = q.Session(emu.profiles(), regions=emu.regions(), ledger=q.Ledger(":memory:"), max_retries=0)
            for flags in kinds:
                emu.reset()
                emu.set_workspace("default", **flags)
                try:
                    local.chat("Say hello", profile="default")
                    local.chat("Say hello again", profile="default")
                    print(f"{str(flags):36} answered")
                except errors.QwenNbError as err:
                    print(f"{str(flags):36} HTTP {err.status} {err.code:28} {type(err).__name__:20} "
                          f"retried: {'yes' if err.retryable else 'no'}")
            local.close()
        """
    ),
    md(
        """
        ## Cheat sheet

        Every answer qwen-nb knows, from the table the client and the emulator share
        (`qwen_nb.facts.ERRORS`; sources in the README's notes on the service):
        """
    ),
    code(
        """
        from qwen_nb import facts

        print(f"{'HTTP':4}  {'native code':28}  {'compatible code':28}  {'qwen-nb class':22}  retried")
        for row in facts.ERRORS.values():
            print(f"{row.status:<4}  {row.native:28}  {row.compat:28}  {row.error:22}  "
                  f"{'yes' if row.retryable else 'no'}")
        """
    ),
    md(
        """
        Next: [05 · splitting costs](05_splitting_costs.ipynb).
        """
    ),
]

NOTEBOOKS["05_splitting_costs"] = [
    md(
        """
        # 05 · Splitting costs between workspaces

        Every call made through qwen-nb — `chat()`, streams, `chat_many()`, magics, widgets,
        `compare()`, `probe()` — is recorded once in a local **usage ledger** (SQLite, in your
        user data folder; `QWEN_NB_LEDGER` moves it) with its profile, workspace, region, model,
        tokens and estimated cost. `q.usage()` reports it per workspace, profile, model or day.

        The ledger keeps every call ever made, so this notebook notes the time first and reports
        only what it did itself.
        """
    ),
    code(
        """
        import time

        start = time.time()  # report only this notebook's calls: q.usage(since=start)
        """
    ),
    CONNECT,
    md(
        """
        Two teams, two sub-workspaces (on your account: the first two named profiles in the
        default profile's region; with fewer, the default profile stands in):
        """
    ),
    code(
        """
        home = s.get_profile()
        subs = [p for p in s.profiles() if p.name != home.name and p.region == home.region
                and (p.models is None or "qwen-plus" in p.models)]
        team_a, team_b = (subs + [home, home])[:2]
        print("team A:", team_a.name, "· workspace", team_a.workspace)
        print("team B:", team_b.name, "· workspace", team_b.workspace)
        """
    ),
    md("The same kind of work, done through each team's own key:"),
    code(
        """
        work_a = ["What is the capital of France?", "Translate hello into French", "Tell me a joke"]
        work_b = ["Write a haiku about the sea", "Count from 1 to 10"]

        for name, work in ((team_a.name, work_a), (team_b.name, work_b)):
            for result in s.chat_many(work, profile=name, model="qwen-plus", progress=False):
                print(f"{name}: {result.text if not isinstance(result, Exception) else result.message}")
        """
    ),
    md(
        """
        ## The report

        Grouped by workspace (calls of a profile without a workspace id count under its region's
        default workspace), with tokens, errors and the estimated cost per currency, and a bar
        per workspace:
        """
    ),
    code(
        """
        q.usage(since=start)
        """
    ),
    md(
        """
        Other groupings: `by="profile"`, `by="model"`, `by="day"`. Plain text works anywhere
        (`qwen-nb usage` prints the same table in a terminal):
        """
    ),
    code(
        """
        print(q.usage(since=start, by="profile"))
        """
    ),
    md(
        """
        The numbers as data, for a spreadsheet or pandas (`report.to_pandas()` when pandas is
        installed):
        """
    ),
    code(
        """
        report = q.usage(since=start, by="profile")
        for row in report.rows:
            print(row["key"], row["calls"], row["input_tokens"], row["output_tokens"], row["costs"])
        print(report.to_csv())
        """
    ),
    md(
        """
        ## Notes

        * Costs are **estimates** from qwen-nb's price table (`qwen_nb.prices`, per model and
          region, USD for international regions, CNY for Beijing); the bill is the authority.
          Calls whose price is unknown are counted apart, never as zero.
        * Failed calls are recorded too (`errors` column); a stream stopped early counts the
          tokens received.
        * A budget per profile (`QWEN_NB_<NAME>_BUDGET`) warns at 80 % and 100 % of it;
          `q.Session(..., hard_budget=True)` refuses calls once it is spent.
        * `%qwen_usage` shows the report from a magic; the `UsagePanel` widget
          ([06](06_playground_and_pickers.ipynb)) keeps it live while you work.
        """
    ),
]

NOTEBOOKS["06_playground_and_pickers"] = [
    md(
        """
        # 06 · The Playground and the pickers

        The widgets are views over the plain-Python API: everything a button does is also a
        method, so this notebook shows each widget and then drives it from code. Keys never
        enter a widget's synced state, so a saved notebook does not carry them.

        Widget outputs change on every run (widget ids), so those cells are marked
        `# NBVAL_IGNORE_OUTPUT` for the notebook tests.
        """
    ),
    code(
        """
        import time

        start = time.time()  # for the usage panel at the end: this notebook's calls only
        """
    ),
    CONNECT,
    PICK_PROFILES,
    md(
        """
        ## The Playground

        Region, profile, model and API pickers, parameters, a prompt box, **Send / Stop / Clear**,
        the streamed answer (with thinking, when the model thinks), the usage line, the
        conversation history, and **Show code** for the same call outside qwen-nb.
        """
    ),
    code(
        """
        # NBVAL_IGNORE_OUTPUT
        pg = q.Playground(model="qwen-plus")
        pg
        """
    ),
    md("What the Send button does, from code:"),
    code(
        """
        pg.model.wait()  # the model list is fetched in the background
        pg.send("Who are you?")
        pg.wait()
        print(pg.answer_text)
        print(pg.last_result.usage.line())
        """
    ),
    md("A second turn keeps the conversation:"),
    code(
        """
        pg.send("Tell me a joke")
        pg.wait()
        print(pg.answer_text)
        print([m["role"] for m in pg.history])
        """
    ),
    md(
        """
        **Show code** renders the call for the current choices (model, profile, API, parameters)
        with `q.snippet()`; the language list offers Python, curl, Node.js, Java, Go, C# and PHP:
        """
    ),
    code(
        """
        from IPython.display import Markdown

        pg.code_toggle.value = True
        pg.code_language.value = "curl"
        Markdown(pg.code_text("Who are you?"))
        """
    ),
    md(
        """
        ## The pickers on their own

        `RegionPicker`, `ProfilePicker` and `ModelPicker` link up: picking a profile sets its
        region; the model list is the one the profile's key can see, with models its workspace
        was not granted marked `(not granted)`.
        """
    ),
    code(
        """
        # NBVAL_IGNORE_OUTPUT
        import ipywidgets as widgets

        region = q.RegionPicker()
        profile = q.ProfilePicker(region=region)
        model = q.ModelPicker(profile=profile)
        api = q.ApiToggle()
        widgets.VBox([widgets.HBox([region, profile]), widgets.HBox([model, api])])
        """
    ),
    code(
        """
        profile.value = sub.name
        model.wait()
        print("region:", region.value, "· list from:", model.source)
        for label, _ in model.options:
            print(" ", label)
        """
    ),
    md(
        """
        `ParamsBox` follows the model (thinking switch on, off or locked as the model allows) and
        gives the keyword arguments for `chat()`:
        """
    ),
    code(
        """
        # NBVAL_IGNORE_OUTPUT
        params = q.ParamsBox(model=model)
        params
        """
    ),
    code(
        """
        if "qwen-plus" in [value for _, value in model.options]:
            model.value = "qwen-plus"
        params.max_tokens.value = 64
        print(params.params())
        r = s.chat("Who are you?", model=model.value, profile=profile.value, api=api.value, **params.params())
        print(r.text)
        """
    ),
    md(
        """
        ## Keys and usage

        `KeyEntry` takes a key typed into a password box, turns it into a profile of the chosen
        region and clears the box at once: the key is never a synced widget value, so it is not
        saved with the notebook. `UsagePanel` shows `q.usage()` live, per workspace.
        """
    ),
    code(
        """
        # NBVAL_IGNORE_OUTPUT
        q.KeyEntry()
        """
    ),
    code(
        """
        # NBVAL_IGNORE_OUTPUT
        panel = q.UsagePanel(since=start)  # the calls of this notebook (start: noted at the top)
        panel
        """
    ),
    code(
        """
        totals = panel.refresh().totals
        print(totals["calls"], "calls in this notebook so far,", totals["errors"], "errors")
        """
    ),
    md("Next: [07 · beyond the basics](07_beyond_basics.ipynb)."),
]

TINY_PNG = code(
    """
    import struct
    import tempfile
    import zlib
    from pathlib import Path


    def tiny_png(path, width=16, height=16, rgb=(220, 30, 30)):
        \"\"\"Write a plain-colour PNG with the standard library only.\"\"\"
        def chunk(kind, data):
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        rows = b"".join(b"\\x00" + bytes(rgb) * width for _ in range(height))
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
        png = b"\\x89PNG\\r\\n\\x1a\\n" + body
        Path(path).write_bytes(png)
        return path


    folder = tempfile.TemporaryDirectory()
    square = tiny_png(Path(folder.name) / "red-square.png")
    print(square.name, square.stat().st_size, "bytes")
    """
)

NOTEBOOKS["07_beyond_basics"] = [
    md(
        """
        # 07 · Beyond the basics

        Streaming, thinking, JSON output, function calling, images, many prompts at once, async,
        and the `%%qwen` magic. Everything works on both endpoints (`api="openai"` or
        `api="dashscope"`) with the same result types.
        """
    ),
    CONNECT,
    md(
        """
        ## Streaming

        `stream_chat()` returns a stream of `ChatDelta` pieces; `.result` is the whole
        `ChatResult` once it ends, and `.close()` stops it early (the partial answer is kept and
        recorded as interrupted).
        """
    ),
    code(
        """
        stream = q.stream_chat("Write a haiku about the sea")
        for delta in stream:
            print(delta.content, end="")
        print()
        print(stream.result.usage.line())
        """
    ),
    md(
        """
        ## Thinking

        Hybrid models (qwen-plus, qwen-flash, Qwen3) think when `enable_thinking=True`;
        `thinking_budget` caps the thinking tokens. The reasoning is kept apart from the answer
        (`.reasoning`) and shows as a folded *Thinking* section. Models that think by default
        and only stream while thinking are streamed for you by `chat()`.
        """
    ),
    code(
        """
        r = q.chat("Is 17 a prime number?", enable_thinking=True, thinking_budget=200)
        r
        """
    ),
    code(
        """
        print(len(r.reasoning), "characters of thinking ·", r.usage.line())
        """
    ),
    md("While streaming, thinking and answer arrive as separate fields of each delta:"),
    code(
        """
        stream = q.stream_chat("Is 17 a prime number?", enable_thinking=True)
        thinking = answer = 0
        for delta in stream:
            thinking += len(delta.reasoning)
            answer += len(delta.content)
        print(f"{thinking} characters of thinking, then {answer} of answer")
        """
    ),
    md(
        """
        ## JSON output

        `response_format={"type": "json_object"}` asks for one JSON object; the prompt must
        mention JSON. `.json()` parses the answer.
        """
    ),
    code(
        """
        r = q.chat(
            "Describe the fruit banana as JSON with the keys name, color and taste.",
            response_format={"type": "json_object"},
        )
        print(r.text)
        data = r.json()
        print(type(data).__name__, sorted(data))
        """
    ),
    md(
        """
        (The emulator's JSON is canned and ignores the keys asked for; a real model follows them.
        Always check the keys you need before using them.)
        """
    ),
    md(
        """
        ## Function calling

        Describe the tools; the model answers with a `tool_calls` request instead of text; run
        the function and send its result back as a `tool` message for the final answer.
        """
    ),
    code(
        """
        import json

        tools = [{
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }]


        def get_weather(city):
            return {"city": city, "temperature_c": 31, "sky": "thunderstorms"}  # a stand-in


        messages = [{"role": "user", "content": "What is the weather in Singapore?"}]
        first = q.chat(messages, tools=tools)
        print(first.finish_reason, [(c.name, c.arguments) for c in first.tool_calls])
        """
    ),
    code(
        """
        if first.tool_calls:
            calls = [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                     for c in first.tool_calls]
            messages.append({"role": "assistant", "content": first.text, "tool_calls": calls})
            for c in first.tool_calls:
                output = get_weather(**json.loads(c.arguments))
                messages.append({"role": "tool", "tool_call_id": c.id, "content": json.dumps(output)})
            final = q.chat(messages, tools=tools)
            print(final.text)
        else:  # a model may also answer directly
            print(first.text)
        """
    ),
    md(
        """
        ## Images

        Vision models (qwen-vl-plus, qwen-vl-max, qwen3-vl-plus) take `images=`: URLs, or local
        files that are sent inline (base64). A 16×16 PNG made with the standard library:
        """
    ),
    TINY_PNG,
    code(
        """
        q.chat("What colour is this square?", model="qwen-vl-plus", images=[square])
        """
    ),
    md(
        """
        (The emulator does not look at pixels: its description is canned. A real vision model
        answers about the red square.) A public image URL works the same way
        (`images=["https://..."]`): the service fetches it.

        ## Many prompts at once

        `chat_many()` runs the prompts concurrently (`concurrency=8` by default), with a progress
        bar, and returns the results in input order; a failed prompt is its error, not an
        exception, so one failure does not lose the rest.
        """
    ),
    code(
        """
        # NBVAL_IGNORE_OUTPUT
        prompts = ["Say hello", "Tell me a joke", "What is 2+2", "What is the capital of France?",
                   "Translate hello into French", "Count from 1 to 10"]
        results = q.chat_many(prompts, concurrency=4)
        """
    ),
    code(
        """
        for prompt, result in zip(prompts, results):
            print(f"{prompt:32} -> {result.text if not isinstance(result, Exception) else type(result).__name__}")
        """
    ),
    md(
        """
        ## Async

        `achat()` and `astream_chat()` use the SDKs' async clients; notebooks allow top-level
        `await`:
        """
    ),
    code(
        """
        import asyncio

        hello, joke = await asyncio.gather(q.achat("Say hello"), q.achat("Tell me a joke", api="dashscope"))
        print(hello.text)
        print(joke.text)
        """
    ),
    md(
        """
        ## The `%%qwen` magic

        `{name}` in the cell inserts a notebook variable; options pick the model, profile, API,
        thinking, system prompt, temperature and token cap. `--stream` shows the answer as it
        grows; its output is updated in place, so the notebook tests do not compare that cell.
        """
    ),
    code("%load_ext qwen_nb"),
    code(
        """
        country = "France"
        """
    ),
    code(
        """
        %%qwen --max-tokens 100 -o about
        What is the capital of {country}?
        """
    ),
    code(
        """
        %%qwen --stream --thinking
        Is 17 a prime number?
        """,
        "nbval-ignore-output",
    ),
    code(
        """
        print(about.model, "·", about.usage.line())
        """
    ),
]


# Building ---------------------------------------------------------------------------------------


def build(name: str, cells: list[Cell]):
    """An nbformat notebook for ``cells`` with stable cell ids."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    prefix = name.split("_", 1)[0]
    for i, cell in enumerate(cells):
        cid = f"nb{prefix}-{i:02d}"
        if cell.kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(cell.source, id=cid))
        else:
            c = nbformat.v4.new_code_cell(cell.source, id=cid)
            if cell.tags:
                c.metadata["tags"] = list(cell.tags)
            nb.cells.append(c)
    return nb


def stabilize(nb) -> None:
    """Replace per-run identifiers in outputs with the nbval placeholders; drop per-run metadata."""

    def fix(value):
        if isinstance(value, str):
            for pattern, repl in STABLE_OUTPUT:
                value = pattern.sub(repl, value)
            return value
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        return value

    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = fix(out["text"])
            if "data" in out:
                for mime, value in list(out["data"].items()):
                    if mime.startswith("text/") or mime == "application/json":
                        out["data"][mime] = fix(value)
            if "traceback" in out:
                out["traceback"] = fix(out["traceback"])
    nb.metadata.pop("widgets", None)


def up_to_date(name: str) -> bool:
    """Whether the saved notebook has exactly the cells (sources, ids, tags) this file generates, all run."""
    import nbformat

    path = NOTEBOOKS_DIR / f"{name}.ipynb"
    if not path.exists():
        return False
    saved = nbformat.read(path, as_version=4)
    fresh = build(name, NOTEBOOKS[name])

    def shape(nb):
        return [(c.cell_type, c.id, c.source, c.metadata.get("tags", [])) for c in nb.cells]

    ran = all(c.execution_count for c in saved.cells if c.cell_type == "code")
    return ran and shape(saved) == shape(fresh)


def clean_environment() -> None:
    """No key may reach the kernels: the outputs must be the emulator's."""
    from qwen_nb.testing import key_configured

    for var in list(os.environ):
        if var == "DASHSCOPE_API_KEY" or (var.startswith("QWEN_NB_") and var.endswith("_API_KEY")):
            del os.environ[var]
    os.environ.pop("QWEN_NB_EMULATOR", None)
    if key_configured():
        raise SystemExit(
            "A Model Studio key is configured in a .env file: move it away while recording the notebooks "
            "(the recorded outputs must come from the emulator)."
        )


def check_keys(path: Path) -> None:
    from qwen_nb.notebooks import scan_notebook

    findings = scan_notebook(path, allow_demo_keys=False)
    if findings:
        raise SystemExit(f"{path}: key-like strings found, not saving: " + "; ".join(str(f) for f in findings))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="build only notebooks whose name starts with one of these")
    parser.add_argument("--no-execute", action="store_true", help="write the cells without running them")
    parser.add_argument("--changed", action="store_true", help="only notebooks whose saved cells are out of date")
    args = parser.parse_args(argv)

    import nbformat

    names = [n for n in NOTEBOOKS if not args.only or any(n.startswith(o) for o in args.only)]
    if not names:
        parser.error(f"no notebook matches {args.only}; known: {', '.join(NOTEBOOKS)}")
    if args.changed:
        names = [n for n in names if not up_to_date(n)]
        if not names:
            print("every notebook is up to date")
            return 0
    NOTEBOOKS_DIR.mkdir(exist_ok=True)
    emulator = None
    if not args.no_execute:
        clean_environment()
        from qwen_nb.emulator import Emulator

        emulator = Emulator().start()
        os.environ["QWEN_NB_EMULATOR"] = emulator.url
    total = time.perf_counter()
    try:
        for name in names:
            path = NOTEBOOKS_DIR / f"{name}.ipynb"
            nb = build(name, NOTEBOOKS[name])
            t0 = time.perf_counter()
            if emulator is not None:
                from nbclient import NotebookClient

                client = NotebookClient(
                    nb,
                    kernel_name=KERNEL,
                    timeout=CELL_TIMEOUT,
                    resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
                    record_timing=False,
                    store_widget_state=False,
                    coalesce_streams=True,
                )
                client.execute()
                stabilize(nb)
                nb.metadata["kernelspec"]["name"] = KERNEL
            nbformat.validate(nb)
            tmp = path.with_suffix(".ipynb.tmp")
            nbformat.write(nb, tmp)
            check_keys(tmp)
            tmp.replace(path)
            print(f"{path.relative_to(ROOT)}: {len(nb.cells)} cells, {time.perf_counter() - t0:.1f} s")
    finally:
        if emulator is not None:
            emulator.stop()
            os.environ.pop("QWEN_NB_EMULATOR", None)
    print(f"total {time.perf_counter() - total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
