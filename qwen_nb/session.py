"""``Session``: the front door. Profiles in, ``ChatResult`` out, whichever SDK makes the call.

A session holds profiles (region + workspace key), the region table (the real service's,
an emulator's or a proxy's), one SDK client per (profile, api), the call pipeline
(``qwen_nb._pipeline``: retries, guided errors, the ledger row) and the usage ledger.
Each logical call is validated before any network I/O, goes through the pipeline, is
normalised to one ``ChatResult`` and recorded once in the ledger.

The process-default session and the module-level functions (``qwen_nb.chat`` ...) live in
``qwen_nb._default``.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qwen_nb._guidance import ErrorContext, ServiceFailure, guided_error
from qwen_nb._pipeline import Call, CancelToken, Pipeline, base_url_for, detach
from qwen_nb._profiles import Profile, load_profiles
from qwen_nb._regions import REGIONS, Region, RegionTable, get_region
from qwen_nb._secrets import refuse_key, scrub_data
from qwen_nb._settings import Settings
from qwen_nb._streams import AsyncChatStream, ChatStream
from qwen_nb.backends import DEFAULT_TIMEOUT, create_backend
from qwen_nb.errors import (
    AccessDeniedError,
    BudgetExceededError,
    ConfigError,
    InputError,
    NetworkError,
    QwenNbError,
    ServiceError,
)
from qwen_nb.requests import ChatRequest, build_request, check_api, check_model
from qwen_nb.results import ChatResult
from qwen_nb.retry import RetryPolicy

if TYPE_CHECKING:
    from qwen_nb.backends import Backend
    from qwen_nb.ledger import Ledger

log = logging.getLogger("qwen_nb")

__all__ = ["AsyncChatStream", "ChatStream", "GrantResult", "Session"]

#: keyword arguments of the call methods that are not generation parameters
_CALL_OPTIONS = ("keep_raw", "cancel")


@dataclass(frozen=True)
class GrantResult:
    """What ``grant()`` / ``revoke()`` changed: the workspace, the models, and the service's request ids."""

    profile: str
    workspace: str | None
    models: tuple[str, ...]
    granted: bool
    request_ids: tuple[str, ...] = ()

    def __str__(self) -> str:
        verb = "granted to" if self.granted else "revoked from"
        return f"{', '.join(self.models)} {verb} workspace {self.workspace} (profile {self.profile!r})"

    def _repr_markdown_(self) -> str:
        return f"✓ {self}"


class Session:
    """Profiles, SDK clients, the call pipeline and the usage ledger for a notebook.

    ``profiles`` defaults to the settings (environment, ``.env``, user config file:
    ``load_profiles()``); ``regions`` to the real service's (pass an emulator's to talk to it).
    ``ledger`` defaults to the per-user ledger file, except on the emulator (see ``ledger``:
    ``$QWEN_NB_LEDGER`` or in memory, so demo calls never mix with real spend).
    ``hard_budget=True`` refuses calls of a profile whose budget is spent. A session is a
    context manager (``with`` / ``async with``): leaving it closes its clients.
    """

    def __init__(
        self,
        profiles: Mapping[str, Profile] | None = None,
        *,
        regions: Mapping[str, Region] | Sequence[Region] | None = None,
        ledger: Ledger | None = None,
        default_model: str = "qwen-plus",
        default_api: str = "openai",
        max_retries: int = 3,
        hard_budget: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        on_emulator: bool | None = None,
    ) -> None:
        if profiles is not None and not isinstance(profiles, Mapping):
            raise InputError(f"Session(profiles) takes a mapping of name -> Profile, got {type(profiles).__name__}.",
                             fix="Session({'team': Profile('team', key=..., region=...)}), or Session() to read "
                             "the keys from the environment / .env.")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
            raise InputError(f"timeout must be a positive number of seconds, got {timeout!r}.",
                             fix=f"Use e.g. timeout=60 (the default is {DEFAULT_TIMEOUT:g} s).")
        #: when this session was made (epoch seconds): the start of "this session" in usage views
        self.started_at: float = time.time()
        self._profiles: dict[str, Profile] = dict(load_profiles() if profiles is None else profiles)
        for name, p in self._profiles.items():
            if not isinstance(p, Profile):
                raise InputError(f"profiles[{name!r}] is a {type(p).__name__}, not a Profile.")
        self._regions = RegionTable(regions if regions else REGIONS)
        self._ledger = ledger
        refuse_key(default_model, "default_model")
        self.default_model = check_model(default_model)
        self.default_api = check_api(default_api)
        self._retry = retry or RetryPolicy(max_retries=max_retries)
        self.hard_budget = bool(hard_budget)
        self.timeout = float(timeout)
        self._backends: dict[tuple[str, str], Backend] = {}
        self._lock = threading.RLock()
        #: (profile name, api) -> the model ids the service listed for that profile (one cache, widgets included)
        self._model_lists: dict[tuple[str, str], list[str]] = {}
        self._known_models: dict[str, list[str] | None] = {}
        #: profile name -> models that failed with ModelNotGrantedError in this session
        self._not_granted: dict[str, set[str]] = {}
        #: ``on_profiles_changed`` callbacks (weakly held when they are bound methods)
        self._profile_listeners: list[Any] = []
        self._emulator: Any = None  # an in-process emulator handed to this session (stopped by close())
        self._runner: Any = None  # the event loop chat_many runs on (made on first use)
        if on_emulator is None:
            on_emulator = any(p.source == "emulator" for p in self._profiles.values()) or any(
                r.host.startswith(("http://127.", "http://localhost")) for r in self._regions.values())
        self.on_emulator: bool = bool(on_emulator)
        self.pipeline = Pipeline(
            retry=self._retry,
            backend_for=self._backend,
            ledger=lambda: self.ledger,
            context_for=self._context,
            on_not_granted=lambda call: self.note_not_granted(call.profile.name, call.req.model),
        )

    @property
    def retry(self) -> RetryPolicy:
        """How failed calls are retried (``RetryPolicy``); setting it changes the session's pipeline too."""
        return self._retry

    @retry.setter
    def retry(self, policy: RetryPolicy) -> None:
        if not isinstance(policy, RetryPolicy):
            raise InputError(f"retry must be a RetryPolicy, got {type(policy).__name__}.")
        self._retry = self.pipeline.retry = policy

    # ------------------------------------------------------------------ profiles and regions

    def profiles(self) -> list[Profile]:
        """The session's profiles (keys masked in every repr)."""
        return list(self._profiles.values())

    def get_profile(self, name: str | Profile | None = None) -> Profile:
        """A profile by name; ``None`` is ``"default"`` (or the only / first one)."""
        if isinstance(name, Profile):
            return name
        if not self._profiles:
            raise ConfigError(
                "No profile: no Model Studio API key was found.",
                fix="Set DASHSCOPE_API_KEY (and DASHSCOPE_REGION) in the environment or a .env file, "
                "or call add_profile(name, key, region=...); connect() with no key uses the local emulator.",
            )
        if name is None:
            return self._profiles.get("default") or next(iter(self._profiles.values()))
        if not isinstance(name, str):
            raise InputError(f"profile must be a profile name, got {type(name).__name__}.")
        refuse_key(name, "profile name")
        found = self._profiles.get(name) or self._profiles.get(name.strip().lower().replace("_", "-"))
        if found is None:
            import difflib

            close = difflib.get_close_matches(name, list(self._profiles), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise InputError(
                f"Unknown profile {name!r}.{hint}",
                fix=f"Known profiles: {', '.join(self._profiles)}. Add one with add_profile(name, key, region=...) "
                "or QWEN_NB_<NAME>_API_KEY in the environment.",
            )
        return found

    def add_profile(
        self,
        name: str,
        key: str,
        region: str = "ap-southeast-1",
        workspace: str | None = None,
        models: Sequence[str] | None = None,
        budget: float | None = None,
        base_url: str | None = None,
    ) -> Profile:
        """Add (or replace) a profile; the key is checked and stripped, never shown.

        A key-shaped value anywhere but ``key`` (swapped arguments, a key pasted as the workspace)
        is refused before anything is shown or sent.
        """
        for value, what in ((name, "profile name"), (region, "region"), (workspace, "workspace id"),
                            (models, "models list"), (budget, "budget"), (base_url, "base_url")):
            refuse_key(value, what, profile=name if isinstance(name, str) else None)
        if isinstance(models, str):
            models = [m.strip() for m in models.split(",") if m.strip()]
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget < 0):
            raise InputError(f"budget must be a number >= 0, got {budget!r}.")
        profile = Profile(
            name,
            region=region,
            key=key,
            workspace=workspace or None,
            models=tuple(models) if models is not None else None,
            budget=float(budget) if budget is not None else None,
            source="explicit",
            base_url=base_url,
        )
        with self._lock:
            self._drop_backends(profile.name)
            self._profiles[profile.name] = profile
            self._forget(profile.name)
        self._profiles_changed()
        return profile

    def remove_profile(self, name: str) -> None:
        """Forget a profile and close its SDK clients."""
        profile = self.get_profile(name)
        with self._lock:
            self._drop_backends(profile.name)
            self._profiles.pop(profile.name, None)
            self._forget(profile.name)
        self._profiles_changed()

    def on_profiles_changed(self, callback: Callable[[], Any]) -> Callable[[], None]:
        """Call ``callback()`` after each ``add_profile`` / ``remove_profile``; returns a function that removes it.

        A bound method is held weakly (a closed view does not stay alive for the session's sake).
        A failing callback is logged, never raised into ``add_profile``.
        """
        ref: Any = weakref.WeakMethod(callback) if inspect.ismethod(callback) else (lambda: callback)
        with self._lock:
            self._profile_listeners.append(ref)

        def remove() -> None:
            with self._lock:
                if ref in self._profile_listeners:
                    self._profile_listeners.remove(ref)

        return remove

    def _profiles_changed(self) -> None:
        with self._lock:
            refs = list(self._profile_listeners)
        for ref in refs:
            callback = ref()
            if callback is None:
                with self._lock:
                    if ref in self._profile_listeners:
                        self._profile_listeners.remove(ref)
                continue
            try:
                callback()
            except Exception:
                log.warning("qwen-nb: a profiles-changed callback failed", exc_info=True)

    def profiles_for(self, model: str, region: str | None = None, *, exclude: str | None = None) -> list[Profile]:
        """Profiles of this session known to be able to call ``model`` (of ``region`` if given), in session order.

        Known: the profile's grants list names the model, or it is a default-workspace key (every
        model the account has) that was not refused the model in this session.
        """
        out: list[Profile] = []
        for p in self.profiles():
            if p.name == exclude or (region is not None and p.region != region):
                continue
            if model in self.not_granted(p.name):
                continue
            if (model in p.models) if p.models is not None else p.workspace is None:
                out.append(p)
        return out

    def _forget(self, name: str) -> None:
        """Drop what was learned about profile ``name`` (model lists, not-granted marks): its key changed."""
        self._known_models.pop(name, None)
        self._not_granted.pop(name, None)
        for k in [k for k in self._model_lists if k[0] == name]:
            del self._model_lists[k]

    def cached_models(self, profile: str | Profile | None = None, api: str = "openai") -> list[str] | None:
        """The model list of ``profile`` if ``list_models`` already fetched it, else None (no network call)."""
        name = self.get_profile(profile).name
        with self._lock:
            cached = self._model_lists.get((name, check_api(api)))
        return None if cached is None else list(cached)

    def not_granted(self, profile: str | Profile | None = None) -> frozenset[str]:
        """Models that ``profile`` was refused in this session as not granted to its workspace."""
        name = self.get_profile(profile).name
        with self._lock:
            return frozenset(self._not_granted.get(name, ()))

    def note_not_granted(self, profile: str | Profile | None, model: str) -> None:
        """Remember that ``profile`` may not call ``model`` (done for every ``ModelNotGrantedError``)."""
        name = self.get_profile(profile).name
        with self._lock:
            self._not_granted.setdefault(name, set()).add(model)

    def region(self, profile_name: str | None = None) -> Region:
        """The ``Region`` (with this session's base URLs) of a profile."""
        return self._region_of(self.get_profile(profile_name))

    def _region_of(self, prof: Profile) -> Region:
        return self._regions.get(prof.region) or get_region(prof.region)

    def regions(self) -> RegionTable:
        """The session's region table (the same type as ``qwen_nb.regions()``): the base URLs calls go to.

        The real service's regions, or an emulator's (hosts on 127.0.0.1) for a session on the
        emulator. A copy: changing it does not change the session.
        """
        return RegionTable(self._regions)

    @property
    def ledger(self) -> Ledger:
        """The usage ledger, opened at first use unless one was given.

        A session on the real service records into the per-user ledger file (or
        ``$QWEN_NB_LEDGER``). A session on the emulator never writes its demo calls there:
        it uses ``$QWEN_NB_LEDGER`` if set, else an in-memory ledger that ends with the session.
        """
        if self._ledger is None:
            from qwen_nb.ledger import ENV_LEDGER, Ledger

            with self._lock:
                if self._ledger is None:
                    if self.on_emulator and not Settings().get(ENV_LEDGER):
                        self._ledger = Ledger(":memory:")
                    else:
                        self._ledger = Ledger()
        return self._ledger

    # ------------------------------------------------------------------ clients

    def _drop_backends(self, profile_name: str) -> None:
        for key in [k for k in self._backends if k[0] == profile_name]:
            backend = self._backends.pop(key)
            try:
                backend.close()
            except Exception:  # pragma: no cover - closing is best effort
                pass

    def _backend(self, call: Call) -> Backend:
        key = (call.profile.name, call.api)
        backend = self._backends.get(key)
        if backend is not None and backend.profile is call.profile and backend.base_url == call.base_url:
            return backend
        with self._lock:
            backend = self._backends.get(key)
            if backend is None or backend.profile is not call.profile or backend.base_url != call.base_url:
                if backend is not None:
                    backend.close()
                backend = create_backend(call.api, call.profile, call.base_url, timeout=self.timeout)
                self._backends[key] = backend
            return backend

    def _loop_runner(self) -> Any:
        """The event loop (in a worker thread) that ``chat_many`` runs on, kept so its clients are reused."""
        with self._lock:
            if self._runner is None:
                from qwen_nb._many import LoopRunner

                self._runner = LoopRunner()
            return self._runner

    def close(self) -> None:
        """Release the SDK clients, sync and async (and stop an emulator handed to this session)."""
        with self._lock:
            runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()
        with self._lock:
            for name in {k[0] for k in self._backends}:
                self._drop_backends(name)
            if self._emulator is not None:
                try:
                    self._emulator.stop()
                finally:
                    self._emulator = None

    async def aclose(self) -> None:
        """``close()`` from a coroutine: the running loop's async clients are closed before it returns."""
        with self._lock:
            backends = list(self._backends.values())
            self._backends.clear()
        for backend in backends:
            try:
                await backend.aclose()
            except Exception:  # pragma: no cover - closing is best effort
                pass
        self.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        names = ", ".join(self._profiles) or "none"
        where = " on the local emulator" if self.on_emulator else ""
        return f"<qwen_nb.Session profiles: {names}; model {self.default_model}; api {self.default_api}{where}>"

    # ------------------------------------------------------------------ preparing a call

    def _keyed_profile(self, profile: str | Profile | None) -> Profile:
        """The profile a call uses; a ``ConfigError`` when it has no key."""
        prof = self.get_profile(profile)
        if not prof.key:
            raise ConfigError(f"Profile {prof.name!r} has no API key.", fix="add_profile(name, key, region=...).")
        return prof

    def _refuse_over_budget(self, prof: Profile, region: Region, model: str, api: str) -> None:
        """With ``hard_budget``, a ``BudgetExceededError`` once the profile has spent its budget."""
        if prof.budget is not None and self.hard_budget:
            spent = self.ledger.spent(prof.name)
            if spent >= prof.budget:
                raise BudgetExceededError(
                    f"Profile {prof.name!r} has spent {spent:.4f} of its budget {prof.budget:g} "
                    f"{region.currency}; the session refuses further calls (hard_budget=True).",
                    fix="Raise the budget (QWEN_NB_<NAME>_BUDGET or add_profile(..., budget=...)), use another "
                    "profile, or create the session with hard_budget=False to only warn.",
                    profile=prof.name,
                    region=prof.region,
                    model=model,
                    api=api,
                )

    def _prepare(self, prompt: Any, model: str | None, profile: str | Profile | None, api: str | None,
                 params: dict[str, Any]) -> Call:
        api = self.default_api if api is None else check_api(api)
        prof = self._keyed_profile(profile)
        options = {k: params.pop(k) for k in _CALL_OPTIONS if k in params}
        cancel = options.get("cancel")
        if cancel is not None and not isinstance(cancel, CancelToken):
            raise InputError(f"cancel must be a qwen_nb CancelToken, got {type(cancel).__name__}.")
        if model is not None:  # (the default model was checked when the session was made)
            refuse_key(model, "model", profile=prof.name)
        req = build_request(prompt, model=self.default_model if model is None else model, **params)
        region = self._region_of(prof)
        if prof.budget is not None:
            self._refuse_over_budget(prof, region, req.model, api)
        return Call(prof, region, api, req, base_url_for(prof, region, api), keep_raw=bool(options.get("keep_raw")),
                    cancel=cancel)

    def _context(self, call: Call, attempts: int, failure: ServiceFailure | None = None) -> ErrorContext:
        known = None
        if failure is not None and failure.status == 404:
            known = self._models_for_hint(call)
        return ErrorContext(
            profile=call.profile,
            region=call.region.id,
            region_label=call.region.label,
            base_url=call.base_url,
            model=call.req.model,
            api=call.api,
            others=tuple(p for p in self._profiles.values() if p.name != call.profile.name),
            known_models=known,
            attempts=attempts,
            gateway=call.region.gateway(call.profile.workspace or "{WorkspaceId}"),
        )

    def _models_for_hint(self, call: Call) -> list[str] | None:
        name = call.profile.name
        if name not in self._known_models:
            try:
                listing = Call(call.profile, call.region, "openai", call.req,
                               base_url_for(call.profile, call.region, "openai"))
                self._known_models[name] = self._backend(listing).list_models()
            except Exception:
                self._known_models[name] = None
        return self._known_models[name]

    # ------------------------------------------------------------------ calls

    def chat(self, prompt_or_messages: Any, *, model: str | None = None, profile: str | Profile | None = None,
             api: str | None = None, **params: Any) -> ChatResult:
        """Call a model and return the whole answer as a ``ChatResult``.

        ``params``: temperature, top_p, max_tokens, seed, stop, enable_thinking, thinking_budget,
        response_format, tools, images, system (and top_k, presence_penalty, repetition_penalty,
        enable_search, tool_choice, parallel_tool_calls). ``keep_raw=True`` keeps the SDK's
        objects in ``ChatResult.raw`` (every chunk, for a streamed answer); ``cancel=`` a
        ``CancelToken`` that stops the call.
        """
        call = self._prepare(prompt_or_messages, model, profile, api, params)
        if call.req.stream_only:
            # the service refuses this call without streaming (thinking on an open-source model):
            # stream it and assemble the answer; a cut stream is retried as a whole call
            call.whole = True
            return ChatStream(self.pipeline, call).result
        return self.pipeline.complete(call)

    def stream_chat(self, prompt_or_messages: Any, *, model: str | None = None,
                    profile: str | Profile | None = None, api: str | None = None, **params: Any) -> ChatStream:
        """Start a streaming call: iterate the returned ``ChatStream`` for ``ChatDelta`` pieces.

        Errors before the first byte (bad key, unknown model, ...) raise here.
        """
        return ChatStream(self.pipeline, self._prepare(prompt_or_messages, model, profile, api, params))

    async def achat(self, prompt_or_messages: Any, *, model: str | None = None,
                    profile: str | Profile | None = None, api: str | None = None, **params: Any) -> ChatResult:
        """``chat`` for asyncio (``openai.AsyncOpenAI`` / ``dashscope.AsyncClient``)."""
        call = self._prepare(prompt_or_messages, model, profile, api, params)
        if call.req.stream_only:
            call.whole = True
            return await AsyncChatStream(self.pipeline, call).aresult()
        return await self.pipeline.acomplete(call)

    def astream_chat(self, prompt_or_messages: Any, *, model: str | None = None,
                     profile: str | Profile | None = None, api: str | None = None,
                     **params: Any) -> AsyncChatStream:
        """A streaming call for asyncio: ``async for delta in s.astream_chat(...)``; ``.result`` after."""
        return AsyncChatStream(self.pipeline, self._prepare(prompt_or_messages, model, profile, api, params))

    def chat_many(self, prompts: Sequence[Any], *, concurrency: int = 8, progress: bool = True,
                  rpm: float | None = None, tpm: float | None = None, checkpoint: str | None = None,
                  **kw: Any) -> list[ChatResult | QwenNbError]:
        """Run ``chat`` over many prompts with at most ``concurrency`` calls in flight.

        Results come back in input order; a failed item is its ``QwenNbError`` instead of a
        result, and does not stop the others. The calls run on the async clients of a private
        event loop. Ctrl-C (or Interrupt in Jupyter) stops the run at once: no request is sent
        after it, the calls in flight are abandoned (their connections closed) and
        ``ChatManyInterrupted`` is raised with ``.results``, the answered items kept (and
        recorded in the ledger) and ``CancelledCallError`` for the others. Retries are counted
        on the progress bar and summed up in one line at the end.

        ``rpm`` / ``tpm``: at most so many requests / tokens per minute (Model Studio's limits are
        per account and model, shared by every workspace): calls wait for their turn, a retry
        counts as a request, and a 429 of either kind pauses the run for a moment.
        ``checkpoint="name"``: each answer is stored in the ledger's database as it arrives, so
        the same call again (after an interrupt, a kernel restart or a crash) sends only the
        prompts not answered yet and returns every answer; ``Ledger.clear_checkpoint(name)``
        forgets them.
        """
        from qwen_nb._many import run_many

        return run_many(self, prompts, concurrency=concurrency, progress=progress, rpm=rpm, tpm=tpm,
                        checkpoint=checkpoint, kw=kw)

    async def achat_many(self, prompts: Sequence[Any], *, concurrency: int = 8, progress: bool = True,
                         rpm: float | None = None, tpm: float | None = None, checkpoint: str | None = None,
                         **kw: Any) -> list[ChatResult | QwenNbError]:
        """``chat_many`` to await (``await q.achat_many(...)`` in a notebook cell); cancelling it stops the run."""
        from qwen_nb._many import arun_many

        return await arun_many(self, prompts, concurrency=concurrency, progress=progress, rpm=rpm, tpm=tpm,
                               checkpoint=checkpoint, kw=kw)

    # ------------------------------------------------------------------ grants

    def _native_base(self, prof: Profile) -> str:
        return base_url_for(prof, self._region_of(prof), "dashscope")

    def _permissions_error(self, exc: Exception, prof: Profile, what: str) -> QwenNbError:
        from qwen_nb.backends.permissions import PermissionsFailure

        assert isinstance(exc, PermissionsFailure)
        failure = exc.failure
        region = self._region_of(prof)
        call = Call(prof, region, "dashscope", ChatRequest(model=self.default_model, messages=[]),
                    self._native_base(prof))
        err = guided_error(failure, self._context(call, 1, failure))
        err.model = None
        if failure.status in (401, 403) and what != "list":
            # the key may not change this workspace's grants: say so, not "grant the model"
            err = AccessDeniedError(
                f"The key of profile {prof.name!r} ({prof.masked_key}) may not change the model grants of "
                f"workspace {prof.workspace} in {region.label} [{region.id}].",
                fix="Change grants with the Alibaba Cloud account (its key, or the console: the workspace > model "
                "permissions); a sub-workspace's own key is usually not allowed to.",
                status=failure.status, code=failure.code, request_id=failure.request_id, profile=prof.name,
                region=prof.region, api="dashscope", raw=scrub_data(failure.body))
        return err

    def granted_models(self, profile: str | Profile | None = None, *, refresh: bool = False) -> list[str]:
        """The models ``profile``'s workspace was granted, from the service's permissions list (one call).

        Needs a workspace id on the profile (a default-workspace key may call every model the
        account has). Cached on the session like ``list_models``.
        """
        from qwen_nb.backends.permissions import PermissionsFailure, granted_models

        prof = self.get_profile(profile)
        if not prof.workspace:
            raise InputError(f"Profile {prof.name!r} has no workspace id: its grants cannot be listed.",
                             fix="Set QWEN_NB_<NAME>_WORKSPACE=llm-... (console > Workspaces), or use list_models().")
        cached = None if refresh else self._model_lists.get((prof.name, "granted"))
        if cached is not None:
            return list(cached)
        try:
            names = granted_models(self._native_base(prof), prof.key, timeout=self.timeout)
        except PermissionsFailure as exc:
            raise self._permissions_error(exc, prof, "list") from None
        with self._lock:
            self._model_lists[(prof.name, "granted")] = list(names)
        return names

    def grant(self, models: str | Sequence[str], profile: str | Profile | None = None) -> GrantResult:
        """Grant ``models`` to ``profile``'s workspace for inference (the service's permissions API)."""
        return self._set_grants(models, profile, allow=True)

    def revoke(self, models: str | Sequence[str], profile: str | Profile | None = None) -> GrantResult:
        """Take inference on ``models`` away from ``profile``'s workspace."""
        return self._set_grants(models, profile, allow=False)

    def _set_grants(self, models: str | Sequence[str], profile: str | Profile | None, *, allow: bool) -> GrantResult:
        from qwen_nb.backends.permissions import MAX_MODELS, PermissionsFailure, set_inference

        names = [models] if isinstance(models, str) else list(models) if isinstance(models, Sequence) else None
        if not names:
            raise InputError(f"Give the models to {'grant' if allow else 'revoke'}, got {models!r}.",
                             fix="E.g. q.grant(['qwen-max'], profile='team-a').")
        names = [check_model(m) for m in names]
        prof = self.get_profile(profile)
        if not prof.workspace:
            raise InputError(f"Profile {prof.name!r} has no workspace id: grants are set per workspace.",
                             fix="Use the profile of the sub-workspace (with QWEN_NB_<NAME>_WORKSPACE set).")
        request_ids = []
        for i in range(0, len(names), MAX_MODELS):
            try:
                reply = set_inference(self._native_base(prof), prof.key, names[i:i + MAX_MODELS], allow,
                                      timeout=self.timeout)
            except PermissionsFailure as exc:
                raise self._permissions_error(exc, prof, "set") from None
            request_ids.append(reply.get("request_id"))
        with self._lock:
            self._model_lists.pop((prof.name, "granted"), None)
            self._model_lists = {k: v for k, v in self._model_lists.items() if k[0] != prof.name}
            if allow:
                self._not_granted.get(prof.name, set()).difference_update(names)
        return GrantResult(prof.name, prof.workspace, tuple(names), allow, tuple(r for r in request_ids if r))

    def list_models(self, profile: str | Profile | None = None, api: str = "openai", *,
                    refresh: bool = False) -> list[str]:
        """The models a profile can call: its workspace's grants, or the region's list for its key.

        A profile with a workspace id gets its workspace's grants from the service's permissions
        list (``granted_models``); where that list is not available it falls back to the model list
        of the API (``GET /compatible-mode/v1/models``, which lists the region's catalogue). Cached
        per (profile, api) on the session (``refresh=True`` asks the service again); every view of
        the session (model pickers included) shares this one cache.
        """
        api = check_api(api)
        prof = self.get_profile(profile)
        cached = None if refresh else self._model_lists.get((prof.name, api))
        if cached is not None:
            return list(cached)
        if prof.workspace:
            try:
                granted = self.granted_models(prof, refresh=refresh)
            except (ServiceError, NetworkError) as unavailable:
                log.debug("qwen-nb: no permissions list for %s (%s); listing the API's models", prof.name,
                          type(unavailable).__name__)
            else:
                self._model_lists[(prof.name, api)] = list(granted)
                return granted
        region = self._region_of(prof)
        call = Call(prof, region, api, ChatRequest(model=self.default_model, messages=[]),
                    base_url_for(prof, region, api))
        backend = self._backend(call)
        failed: Exception | None = None
        try:
            names = backend.list_models()
        except Exception as exc:
            failure = backend.failure(exc)
            if failure is None:
                raise
            if api == "dashscope" and failure.status == 404:
                # no native model list on this endpoint: the compatible one lists the same models
                return self.list_models(prof, api="openai", refresh=refresh)
            failed = exc
        if failed is not None:  # raised outside the ``except``: no SDK exception (and its request) in the chain
            err = self.pipeline.translate(failed, call, backend, 1)
            assert err is not None
            err.model = None
            raise detach(err)
        self._known_models[prof.name] = names
        self._model_lists[(prof.name, api)] = list(names)
        return names


    # ------------------------------------------------------------------ beyond chat (qwen_nb._kinds)

    def embed(self, texts: Any, *, model: str = "text-embedding-v4", dimensions: int | None = None,
              profile: str | Profile | None = None, api: str | None = None, batch_size: int | None = None,
              concurrency: int = 1) -> Any:
        """Embed ``texts`` (a string or a list) → ``EmbeddingResult`` (``.array``: numpy, one row per text).

        Texts go in batches of the model's documented rows per request (``batch_size`` may be smaller),
        order kept; ``concurrency`` batches in flight at once. ``api``: "openai" (compatible
        ``/embeddings``) or "dashscope" (native text-embedding). One ledger row per call.
        """
        from qwen_nb import _kinds

        return _kinds.embed(self, texts, model=model, dimensions=dimensions, profile=profile, api=api,
                            batch_size=batch_size, concurrency=concurrency)

    def rerank(self, query: str, documents: Sequence[str], *, model: str | None = None, top_n: int | None = None,
               profile: str | Profile | None = None, api: str | None = None) -> Any:
        """Rank ``documents`` by relevance to ``query`` → ``RerankResult`` (shown as a ranked table)."""
        from qwen_nb import _kinds

        return _kinds.rerank(self, query, documents, model=model, top_n=top_n, profile=profile, api=api)

    def image(self, prompt: str, *, model: str = "wan2.6-t2i", size: str | None = None, n: int = 1,
              profile: str | Profile | None = None, folder: Any = None, sync: bool | None = None,
              progress: bool = True, wait: float = 600.0) -> Any:
        """Make ``n`` images from ``prompt`` → ``ImageResult``, shown inline and saved in ``folder`` at once.

        Synchronous where the model allows it, else (or with ``sync=False``) through the task API
        (``X-DashScope-Async: enable``, then ``GET /tasks/{id}``, with a progress line).
        """
        from qwen_nb import _kinds

        return _kinds.image(self, prompt, model=model, size=size, n=n, profile=profile, folder=folder, sync=sync,
                            progress=progress, wait=wait)

    def speak(self, text: str, *, voice: str | None = None, model: str = "qwen3-tts-flash",
              profile: str | Profile | None = None, folder: Any = None) -> Any:
        """Text to speech → ``SpeechResult`` (an audio player in a notebook; saved in ``folder``)."""
        from qwen_nb import _kinds

        return _kinds.speak(self, text, voice=voice, model=model, profile=profile, folder=folder)

    def transcribe(self, audio: Any, *, model: str = "qwen3-asr-flash", profile: str | Profile | None = None,
                   api: str | None = None) -> Any:
        """Speech to text → ``TranscriptResult``; ``audio``: a file path, bytes, an https URL or a ``SpeechResult``."""
        from qwen_nb import _kinds

        return _kinds.transcribe(self, audio, model=model, profile=profile, api=api)

    def respond(self, input: Any, *, model: str = "qwen3-max-2026-01-23", tools: Any = None,
                previous_response_id: str | None = None, profile: str | Profile | None = None,
                stream: bool = False, **extra: Any) -> Any:
        """The Responses API → ``ResponseResult`` (text, tool steps, ``.id`` for the next turn).

        ``tools``: built-in tool names (``["web_search", "code_interpreter"]``) or tool objects.
        ``stream=True`` returns a ``ResponseStream`` of ``ResponseEvent`` (steps as they finish, text);
        ``cancel=`` a ``CancelToken`` stops it (the Playground's Stop).
        """
        from qwen_nb import _kinds

        if stream:
            return _kinds.respond_stream(self, input, model=model, tools=tools,
                                         previous_response_id=previous_response_id, profile=profile, **extra)
        return _kinds.respond(self, input, model=model, tools=tools, previous_response_id=previous_response_id,
                              profile=profile, **extra)
