"""``Session``: the front door. Profiles in, ``ChatResult`` out, whichever SDK makes the call.

A session holds profiles (region + workspace key), the region table (the real
service's, or a local emulator's), one SDK client per (profile, api), a retry
policy and the usage ledger. Each logical call is validated before any network
I/O, retried on rate limits / 5xx / connection failures, normalised to one
``ChatResult`` and recorded once in the ledger.

Module-level functions (``chat``, ``stream_chat``, ...) use the default session
made by ``connect()`` (or lazily by ``default_session()``).
"""

from __future__ import annotations

import html
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qwen_nb.backends import DEFAULT_TIMEOUT, create_backend
from qwen_nb.errors import (
    BudgetExceededError,
    ConfigError,
    ErrorContext,
    InputError,
    ModelNotGrantedError,
    NetworkError,
    QwenNbError,
    ServiceFailure,
    StreamInterruptedError,
    guided_error,
    stream_cut_error,
)
from qwen_nb.normalize import Completion, StreamAccumulator, estimate_tokens
from qwen_nb.profiles import Profile, load_profiles
from qwen_nb.regions import REGIONS, Region, get_region
from qwen_nb.requests import ChatRequest, build_request, check_api, check_model
from qwen_nb.results import ChatDelta, ChatResult, Usage
from qwen_nb.retry import RetryPolicy

if TYPE_CHECKING:
    from qwen_nb.backends import Backend
    from qwen_nb.ledger import Ledger

log = logging.getLogger("qwen_nb")

__all__ = [
    "ChatStream",
    "AsyncChatStream",
    "ProfileTable",
    "Session",
    "achat",
    "add_profile",
    "astream_chat",
    "chat",
    "chat_many",
    "connect",
    "default_session",
    "list_models",
    "profiles",
    "set_default_session",
    "stream_chat",
]


@dataclass
class _Call:
    """One logical call, checked and resolved: who, where, what."""

    profile: Profile
    region: Region
    api: str
    req: ChatRequest
    base_url: str


_ESTIMATE: Any = None
_CALL_RECORD: Any = None


def _estimate():
    global _ESTIMATE
    if _ESTIMATE is None:
        from qwen_nb.prices import estimate

        _ESTIMATE = estimate
    return _ESTIMATE


def _call_record():
    global _CALL_RECORD
    if _CALL_RECORD is None:
        from qwen_nb.ledger import CallRecord

        _CALL_RECORD = CallRecord
    return _CALL_RECORD


class Session:
    """Profiles, SDK clients, retries and the usage ledger for a notebook.

    ``profiles`` defaults to the environment / ``.env`` (``load_profiles()``);
    ``regions`` to the real service's (pass an emulator's to talk to it).
    ``ledger`` defaults to the per-user ledger file, except on the emulator (see ``ledger``:
    ``$QWEN_NB_LEDGER`` or in memory, so demo calls never mix with real spend).
    ``hard_budget=True`` refuses calls of a profile whose budget is spent.
    """

    def __init__(
        self,
        profiles: Mapping[str, Profile] | None = None,
        *,
        regions: Mapping[str, Region] | None = None,
        ledger: Ledger | None = None,
        default_model: str = "qwen-plus",
        default_api: str = "openai",
        max_retries: int = 3,
        hard_budget: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
    ) -> None:
        #: when this session was made (epoch seconds): the start of "this session" in usage views
        self.started_at: float = time.time()
        self._profiles: dict[str, Profile] = dict(load_profiles() if profiles is None else profiles)
        for name, p in self._profiles.items():
            if not isinstance(p, Profile):
                raise InputError(f"profiles[{name!r}] is a {type(p).__name__}, not a Profile.")
        self._regions: dict[str, Region] = dict(regions) if regions else dict(REGIONS)
        self._ledger = ledger
        self.default_model = check_model(default_model)
        self.default_api = check_api(default_api)
        self.retry = retry or RetryPolicy(max_retries=max_retries)
        self.hard_budget = bool(hard_budget)
        self.timeout = float(timeout)
        self._backends: dict[tuple[str, str], Backend] = {}
        self._lock = threading.RLock()
        #: (profile name, api) -> the model ids the service listed for that profile (one cache, widgets included)
        self._model_lists: dict[tuple[str, str], list[str]] = {}
        self._known_models: dict[str, list[str] | None] = {}
        #: profile name -> models that failed with ModelNotGrantedError in this session
        self._not_granted: dict[str, set[str]] = {}
        self._emulator: Any = None  # an in-process emulator this session started (stopped by close())
        self.on_emulator: bool = any(p.source == "emulator" for p in self._profiles.values()) or any(
            r.host.startswith(("http://127.", "http://localhost")) for r in self._regions.values()
        )

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
            raise InputError(f"profile must be a profile name, got {name!r}.")
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
    ) -> Profile:
        """Add (or replace) a profile; the key is checked and stripped, never shown."""
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
        )
        with self._lock:
            self._drop_backends(profile.name)
            self._profiles[profile.name] = profile
            self._forget(profile.name)
        return profile

    def remove_profile(self, name: str) -> None:
        """Forget a profile and close its SDK clients."""
        profile = self.get_profile(name)
        with self._lock:
            self._drop_backends(profile.name)
            self._profiles.pop(profile.name, None)
            self._forget(profile.name)

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
        rid = self.get_profile(profile_name).region
        return self._regions.get(rid) or get_region(rid)

    def regions(self) -> dict[str, Region]:
        """The session's region table: region id -> ``Region`` with the base URLs calls go to.

        The real service's regions, or an emulator's (hosts on 127.0.0.1) for a session on the
        emulator. A copy: changing it does not change the session.
        """
        return dict(self._regions)

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
                    if self.on_emulator and not os.environ.get(ENV_LEDGER):
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

    def _backend(self, call: _Call) -> Backend:
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

    def close(self) -> None:
        """Release the SDK clients (and stop an emulator this session started)."""
        with self._lock:
            for name in {k[0] for k in self._backends}:
                self._drop_backends(name)
            if self._emulator is not None:
                try:
                    self._emulator.stop()
                finally:
                    self._emulator = None

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        names = ", ".join(self._profiles) or "none"
        where = " on the local emulator" if self.on_emulator else ""
        return f"<qwen_nb.Session profiles: {names}; model {self.default_model}; api {self.default_api}{where}>"

    # ------------------------------------------------------------------ preparing a call

    def _prepare(self, prompt: Any, model: str | None, profile: str | Profile | None, api: str | None,
                 params: dict[str, Any]) -> _Call:
        api = self.default_api if api is None else check_api(api)
        prof = self.get_profile(profile)
        if not prof.key:
            raise ConfigError(f"Profile {prof.name!r} has no API key.", fix="add_profile(name, key, region=...).")
        req = build_request(prompt, model=self.default_model if model is None else model, **params)
        region = self._regions.get(prof.region) or get_region(prof.region)
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
                    model=req.model,
                    api=api,
                )
        return _Call(prof, region, api, req, region.base_url(api, prof.workspace))

    # ------------------------------------------------------------------ errors and retries

    def _context(self, call: _Call, attempts: int, failure: ServiceFailure | None = None) -> ErrorContext:
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

    def _models_for_hint(self, call: _Call) -> list[str] | None:
        name = call.profile.name
        if name not in self._known_models:
            try:
                backend = self._backend(_Call(call.profile, call.region, "openai", call.req,
                                              call.region.base_url("openai", call.profile.workspace)))
                self._known_models[name] = backend.list_models()
            except Exception:
                self._known_models[name] = None
        return self._known_models[name]

    def _translate(self, exc: BaseException, call: _Call, backend: Backend, attempts: int) -> QwenNbError | None:
        if isinstance(exc, QwenNbError):
            return exc
        failure = backend.failure(exc)
        if failure is None:
            return None
        err = guided_error(failure, self._context(call, attempts, failure))
        err.__cause__ = None
        return err

    def _retry_delay(self, err: QwenNbError, call: _Call, attempts: int) -> float | None:
        """Seconds to wait before retrying, or None if this error is final."""
        if not self.retry.should_retry(err, attempts):
            return None
        delay = self.retry.delay(attempts, getattr(err, "retry_after", None))
        log.warning(
            "qwen-nb: %s calling %s (profile %s, %s); retry %d/%d in %.2f s",
            type(err).__name__, call.req.model, call.profile.name, call.region.id, attempts,
            self.retry.max_retries, delay,
        )
        return delay

    # ------------------------------------------------------------------ results and the ledger

    def _result(self, call: _Call, comp: Completion, latency: float, attempts: int,
                ttft: float | None = None, finish_reason: str | None = None) -> ChatResult:
        usage = comp.usage or Usage()
        cost = currency = None
        try:
            cost, currency = _estimate()(call.req.model, call.profile.region, usage.input_tokens,
                                         usage.output_tokens, usage.reasoning_tokens)
        except Exception as exc:  # a price problem must not lose the answer
            log.debug("qwen-nb: no cost estimate: %s", exc)
        return ChatResult(
            text=comp.text,
            model=call.req.model,
            api=call.api,
            profile=call.profile.name,
            region=call.profile.region,
            reasoning=comp.reasoning,
            finish_reason=finish_reason or comp.finish_reason,
            usage=usage,
            request_id=comp.request_id,
            latency=latency,
            time_to_first_token=ttft,
            tool_calls=comp.tool_calls,
            cost=cost,
            currency=currency,
            workspace=call.profile.workspace,
            attempts=attempts,
            raw=comp.raw,
        )

    def _record(self, call: _Call, *, status: str, attempts: int, latency: float, usage: Usage | None = None,
                request_id: str | None = None, error_code: str | None = None, cost: float | None = None,
                currency: str | None = None) -> None:
        """One ledger row per logical call; a ledger failure is logged, never raised."""
        try:
            u = usage or Usage()
            if cost is None and currency is None and (u.input_tokens or u.output_tokens):
                try:
                    cost, currency = _estimate()(call.req.model, call.profile.region, u.input_tokens,
                                                 u.output_tokens, u.reasoning_tokens)
                except Exception:
                    cost = currency = None
            rec = _call_record()(
                time=time.time(),
                profile=call.profile.name,
                workspace=call.profile.workspace,
                region=call.profile.region,
                api=call.api,
                model=call.req.model,
                input_tokens=u.input_tokens,
                output_tokens=u.output_tokens,
                reasoning_tokens=u.reasoning_tokens,
                latency=latency,
                request_id=request_id,
                status=status,
                error_code=error_code,
                attempts=attempts,
                cost=cost,
                currency=currency,
            )
            self.ledger.record(rec, budget=call.profile.budget)
        except Exception as exc:
            log.warning("qwen-nb: the call could not be recorded in the usage ledger (%s: %s)",
                        type(exc).__name__, exc)

    def _record_result(self, call: _Call, result: ChatResult) -> None:
        self._record(call, status="ok", attempts=result.attempts, latency=result.latency, usage=result.usage,
                     request_id=result.request_id, cost=result.cost, currency=result.currency)

    def _record_error(self, call: _Call, err: QwenNbError, attempts: int, t0: float) -> None:
        if isinstance(err, ModelNotGrantedError):
            with self._lock:
                self._not_granted.setdefault(call.profile.name, set()).add(call.req.model)
        self._record(call, status="error", attempts=attempts, latency=time.perf_counter() - t0,
                     request_id=err.request_id, error_code=err.code or type(err).__name__)

    # ------------------------------------------------------------------ calls

    def chat(self, prompt_or_messages: Any, *, model: str | None = None, profile: str | Profile | None = None,
             api: str | None = None, **params: Any) -> ChatResult:
        """Call a model and return the whole answer as a ``ChatResult``.

        ``params``: temperature, top_p, max_tokens, seed, stop, enable_thinking, thinking_budget,
        response_format, tools, images, system (and top_k, presence_penalty, repetition_penalty,
        enable_search, tool_choice, parallel_tool_calls).
        """
        call = self._prepare(prompt_or_messages, model, profile, api, params)
        if call.req.stream_only:
            # the service refuses this call without streaming (thinking on an open-source model):
            # stream it and assemble the answer
            return ChatStream(self, call).result
        return self._complete(call)

    def _call_failure(self, exc: Exception, call: _Call, backend: Any, attempts: int, t0: float) -> float:
        """A failed attempt of a whole-answer call: the delay before the next, or raise (recorded once)."""
        err = self._translate(exc, call, backend, attempts)
        if err is None:
            raise exc
        delay = self._retry_delay(err, call, attempts)
        if delay is None:
            self._record_error(call, err, attempts, t0)
            raise err from None
        return delay

    def _complete(self, call: _Call) -> ChatResult:
        backend = self._backend(call)
        t0 = time.perf_counter()
        attempts = 0
        while True:
            attempts += 1
            try:
                comp = backend.complete(call.req)
                break
            except Exception as exc:
                time.sleep(self._call_failure(exc, call, backend, attempts, t0))
        result = self._result(call, comp, time.perf_counter() - t0, attempts)
        self._record_result(call, result)
        return result

    def stream_chat(self, prompt_or_messages: Any, *, model: str | None = None,
                    profile: str | Profile | None = None, api: str | None = None, **params: Any) -> ChatStream:
        """Start a streaming call: iterate the returned ``ChatStream`` for ``ChatDelta`` pieces.

        Errors before the first byte (bad key, unknown model, ...) raise here.
        """
        return ChatStream(self, self._prepare(prompt_or_messages, model, profile, api, params))

    async def achat(self, prompt_or_messages: Any, *, model: str | None = None,
                    profile: str | Profile | None = None, api: str | None = None, **params: Any) -> ChatResult:
        """``chat`` for asyncio (``openai.AsyncOpenAI`` / ``dashscope.AsyncClient``)."""
        call = self._prepare(prompt_or_messages, model, profile, api, params)
        if call.req.stream_only:
            return await AsyncChatStream(self, call).aresult()
        backend = self._backend(call)
        t0 = time.perf_counter()
        attempts = 0
        while True:
            attempts += 1
            try:
                comp = await backend.acomplete(call.req)
                break
            except Exception as exc:
                import asyncio

                await asyncio.sleep(self._call_failure(exc, call, backend, attempts, t0))
        result = self._result(call, comp, time.perf_counter() - t0, attempts)
        self._record_result(call, result)
        return result

    def astream_chat(self, prompt_or_messages: Any, *, model: str | None = None,
                     profile: str | Profile | None = None, api: str | None = None,
                     **params: Any) -> AsyncChatStream:
        """A streaming call for asyncio: ``async for delta in s.astream_chat(...)``; ``.result`` after."""
        return AsyncChatStream(self, self._prepare(prompt_or_messages, model, profile, api, params))

    def chat_many(self, prompts: Sequence[Any], *, concurrency: int = 8, progress: bool = True,
                  **kw: Any) -> list[ChatResult | QwenNbError]:
        """Run ``chat`` over many prompts with at most ``concurrency`` calls in flight.

        Results come back in input order; a failed item is its ``QwenNbError`` instead of a
        result, and does not stop the others.
        """
        if isinstance(prompts, (str, Mapping)) or not isinstance(prompts, Sequence):
            raise InputError("chat_many needs a list of prompts (strings or message lists).",
                             fix='chat_many(["first prompt", "second prompt"], concurrency=8).')
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise InputError(f"concurrency must be a positive integer, got {concurrency!r}.")
        from concurrent.futures import ThreadPoolExecutor, as_completed

        items = list(prompts)
        out: list[ChatResult | QwenNbError | None] = [None] * len(items)
        if not items:
            return []

        def one(item: Any) -> ChatResult | QwenNbError:
            try:
                return self.chat(item, **kw)
            except QwenNbError as err:
                return err
            except Exception as exc:  # a bug or an unexpected failure: keep it with its item
                err = QwenNbError(f"Unexpected {type(exc).__name__}: {exc}")
                err.__cause__ = exc
                return err

        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(items), desc=str(kw.get("model") or self.default_model), unit="call")
        pool = ThreadPoolExecutor(max_workers=min(concurrency, len(items)), thread_name_prefix="qwen-nb")
        failed = 0
        try:
            futures = {pool.submit(one, item): i for i, item in enumerate(items)}
            for fut in as_completed(futures):
                res = fut.result()
                out[futures[fut]] = res
                if bar is not None:
                    if isinstance(res, QwenNbError):
                        failed += 1
                        bar.set_postfix(failed=failed, refresh=False)
                    bar.update(1)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=True)
            if bar is not None:
                bar.close()
        return out  # type: ignore[return-value]

    def list_models(self, profile: str | Profile | None = None, api: str = "openai", *,
                    refresh: bool = False) -> list[str]:
        """Model ids the service lists for a profile's key (``GET /compatible-mode/v1/models``).

        Cached per (profile, api) on the session (``refresh=True`` asks the service again); every
        view of the session (model pickers included) shares this one cache.
        """
        api = check_api(api)
        prof = self.get_profile(profile)
        cached = None if refresh else self._model_lists.get((prof.name, api))
        if cached is not None:
            return list(cached)
        region = self._regions.get(prof.region) or get_region(prof.region)
        call = _Call(prof, region, api, ChatRequest(model=self.default_model, messages=[]),
                     region.base_url(api, prof.workspace))
        backend = self._backend(call)
        try:
            names = backend.list_models()
        except Exception as exc:
            failure = backend.failure(exc)
            if failure is None:
                raise
            if api == "dashscope" and failure.status == 404:
                # no native model list on this endpoint: the compatible one lists the same models
                return self.list_models(prof, api="openai")
            err = guided_error(failure, self._context(call, 1))
            err.model = None
            raise err from None
        self._known_models[prof.name] = names
        self._model_lists[(prof.name, api)] = list(names)
        return names


# ---------------------------------------------------------------------- streams


def _partial_usage(call: _Call, acc: StreamAccumulator) -> Usage:
    """The usage of a stream that did not finish: the service's if it sent any, else an estimate."""
    if acc.usage is not None:
        return acc.usage
    prompt = " ".join(m["content"] if isinstance(m.get("content"), str) else "" for m in call.req.messages)
    out, think = estimate_tokens(acc.text), estimate_tokens(acc.reasoning)
    inp = estimate_tokens(prompt)
    return Usage(inp, out + think, think, inp + out + think)


def _header_request_id(raw: Any) -> str | None:
    """``x-request-id`` of an open stream's HTTP response (openai and dashscope stream objects)."""
    inner = getattr(raw, "_stream", raw)  # the async openai wrapper
    response = getattr(inner, "response", None)
    headers = getattr(response, "headers", None) if response is not None else getattr(inner, "headers", None)
    try:
        return headers.get("x-request-id") if headers is not None else None
    except Exception:  # pragma: no cover - an SDK without headers on its stream
        return None


class _StreamBase:
    """What the sync and async streams share: the accumulator, timing and the ledger bookkeeping."""

    def __init__(self, session: Session, call: _Call) -> None:
        self._session = session
        self._call = call
        self._acc = StreamAccumulator()
        self._t0 = time.perf_counter()
        self._ttft: float | None = None
        self._attempts = 0
        self._yielded = 0
        self._closed = False
        self._done = False
        self._recorded = False
        self._error: QwenNbError | None = None
        self._result: ChatResult | None = None
        self._lock = threading.Lock()
        self._backend = session._backend(call)

    @property
    def text(self) -> str:
        """The answer text received so far."""
        return self._acc.text

    @property
    def reasoning(self) -> str:
        """The thinking text received so far."""
        return self._acc.reasoning

    def _see(self, chunk: Any) -> ChatDelta | None:
        delta = self._acc.feed(chunk)
        if delta is not None:
            if self._ttft is None and (delta.content or delta.reasoning):
                self._ttft = time.perf_counter() - self._t0
            self._yielded += 1
        return delta

    def _finish_ok(self) -> None:
        s = self._session
        self._result = s._result(self._call, self._acc.completion(), time.perf_counter() - self._t0,
                                 self._attempts, ttft=self._ttft)
        self._done = True
        if not self._recorded:
            self._recorded = True
            s._record_result(self._call, self._result)

    def _finish_interrupted(self, code: str) -> None:
        if self._recorded:
            return
        self._recorded = True
        usage = _partial_usage(self._call, self._acc)
        self._session._record(self._call, status="interrupted", attempts=max(self._attempts, 1),
                              latency=time.perf_counter() - self._t0, usage=usage,
                              request_id=self._acc.request_id, error_code=code)

    def _finish_error(self, err: QwenNbError) -> None:
        self._error = err
        if not self._recorded:
            self._recorded = True
            self._session._record_error(self._call, err, max(self._attempts, 1), self._t0)

    def _cut_error(self, exc: BaseException) -> StreamInterruptedError:
        """The error for a stream that broke off after some text arrived (``exc``: what the transport raised)."""
        if isinstance(exc, QwenNbError):
            detail = exc.message
        else:
            failure = self._backend.failure(exc)
            detail = failure.message if failure is not None and failure.message else f"{type(exc).__name__}: {exc}"
        return stream_cut_error(detail, self._session._context(self._call, max(self._attempts, 1)),
                                partial=self._acc.text, partial_reasoning=self._acc.reasoning,
                                request_id=self._acc.request_id)

    def _on_failure(self, exc: BaseException) -> tuple[QwenNbError | None, float | None]:
        """Translate a failure; return (error, delay) with delay set when a fresh attempt is allowed."""
        err = self._session._translate(exc, self._call, self._backend, max(self._attempts, 1))
        if err is None:
            return None, None
        if self._yielded == 0 and not self._acc.text:
            return err, self._session._retry_delay(err, self._call, self._attempts)
        return err, None

    def _open_failure(self, exc: Exception) -> float:
        """A failure opening the stream: the delay before a fresh attempt, or raise what the user sees."""
        err, delay = self._on_failure(exc)
        if err is None:
            raise exc
        if delay is None:
            self._finish_error(err)
            raise err from None
        return delay

    def _read_failure(self, exc: Exception) -> float:
        """A failure reading the stream: the delay before a fresh attempt, or raise what the user sees.

        Before any text arrived a retryable failure is retried from scratch; after, a cut
        connection raises ``StreamInterruptedError`` with the partial text.
        """
        original = exc
        if isinstance(exc, _Cut):
            exc = NetworkError(str(exc))
        err, delay = self._on_failure(exc)
        if err is None:
            raise original
        if delay is not None:
            self._acc = StreamAccumulator()
            return delay
        if isinstance(err, NetworkError) and (self._yielded or self._acc.text or self._acc.reasoning):
            cut = self._cut_error(exc)
            self._error = cut
            self._finish_interrupted("StreamInterrupted")
            raise cut from None
        self._finish_error(err)
        raise err from None

    def _partial_result(self) -> ChatResult:
        comp = self._acc.completion()
        comp.usage = _partial_usage(self._call, self._acc)
        return self._session._result(self._call, comp, time.perf_counter() - self._t0, max(self._attempts, 1),
                                     ttft=self._ttft, finish_reason="cancelled")

    def _repr_markdown_(self) -> str:
        state = "done" if self._done else "cancelled" if self._closed else "streaming"
        return f"{self._acc.text}\n\n<small>{html.escape(self._call.req.model)} · {state}</small>"

    def __repr__(self) -> str:
        state = "done" if self._done else "cancelled" if self._closed else "streaming"
        return f"<{type(self).__name__} {self._call.req.model} {state}: {len(self._acc.text)} chars>"


class ChatStream(_StreamBase):
    """A streaming answer: iterate for ``ChatDelta``; ``.result`` when done; ``.close()`` to cancel."""

    def __init__(self, session: Session, call: _Call) -> None:
        super().__init__(session, call)
        self._raw: Any = None
        self._open()
        self._gen = self._generate()

    def _open(self) -> None:
        while True:
            self._attempts += 1
            try:
                self._raw = self._backend.stream(self._call.req)
                self._acc.request_id = _header_request_id(self._raw)
                return
            except Exception as exc:
                time.sleep(self._open_failure(exc))

    def _generate(self) -> Iterator[ChatDelta]:
        while True:
            try:
                for chunk in self._raw:
                    delta = self._see(chunk)
                    if delta is not None:
                        yield delta
                if not self._acc.finished and not self._closed:
                    raise _Cut("the stream ended without a finish reason")
                break
            except GeneratorExit:
                raise
            except Exception as exc:
                if self._closed:
                    return
                time.sleep(self._read_failure(exc))
                self._open()
        if not self._closed:
            self._finish_ok()

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> ChatDelta:
        return next(self._gen)

    def close(self) -> None:
        """Cancel: close the HTTP response at once; the call is recorded as interrupted."""
        with self._lock:
            if self._closed or self._done:
                return
            self._closed = True
        try:
            self._raw.close()
        except Exception:  # pragma: no cover - closing is best effort
            pass
        if self._error is None:
            self._finish_interrupted("Cancelled")

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def result(self) -> ChatResult:
        """The whole answer (reads the rest of the stream first if needed).

        After ``close()`` it is the partial answer, with ``finish_reason="cancelled"``.
        """
        if self._result is not None:
            return self._result
        if self._error is not None:
            raise self._error
        if self._closed:
            return self._partial_result()
        for _ in self:
            pass
        if self._result is None:  # closed from another thread meanwhile
            return self._partial_result()
        return self._result


class AsyncChatStream(_StreamBase):
    """A streaming answer on asyncio: ``async for delta in stream``; ``.result`` when done."""

    def __init__(self, session: Session, call: _Call) -> None:
        super().__init__(session, call)
        self._raw: Any = None
        self._agen: Any = None

    async def _open(self) -> None:
        while True:
            self._attempts += 1
            try:
                self._raw = await self._backend.astream(self._call.req)
                self._acc.request_id = _header_request_id(self._raw)
                return
            except Exception as exc:
                import asyncio

                await asyncio.sleep(self._open_failure(exc))

    async def _generate(self) -> Any:
        import asyncio

        if self._raw is None:
            await self._open()
        while True:
            try:
                async for chunk in self._raw:
                    delta = self._see(chunk)
                    if delta is not None:
                        yield delta
                if not self._acc.finished and not self._closed:
                    raise _Cut("the stream ended without a finish reason")
                break
            except (GeneratorExit, asyncio.CancelledError):
                raise
            except Exception as exc:
                if self._closed:
                    return
                await asyncio.sleep(self._read_failure(exc))
                await self._open()
        if not self._closed:
            self._finish_ok()

    def __aiter__(self) -> AsyncChatStream:
        return self

    async def __anext__(self) -> ChatDelta:
        if self._agen is None:
            self._agen = self._generate()
        return await self._agen.__anext__()

    def __await__(self) -> Any:
        async def opened() -> AsyncChatStream:
            if self._raw is None:
                await self._open()
            return self

        return opened().__await__()

    async def aclose(self) -> None:
        """Cancel: close the HTTP response; the call is recorded as interrupted."""
        with self._lock:
            if self._closed or self._done:
                return
            self._closed = True
        if self._raw is not None:
            try:
                await self._raw.aclose()
            except Exception:  # pragma: no cover - closing is best effort
                pass
        if self._error is None and self._raw is not None:
            self._finish_interrupted("Cancelled")

    async def __aenter__(self) -> AsyncChatStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aresult(self) -> ChatResult:
        """The whole answer, reading the rest of the stream first."""
        if self._result is None and self._error is None and not self._closed:
            async for _ in self:
                pass
        return self.result

    @property
    def result(self) -> ChatResult:
        """The whole answer once the stream was read to its end (``await stream.aresult()`` reads it)."""
        if self._result is not None:
            return self._result
        if self._error is not None:
            raise self._error
        if self._closed:
            return self._partial_result()
        raise InputError("The stream has not been read to its end yet.",
                         fix="Iterate it (async for ...) or use `await stream.aresult()`.")


class _Cut(Exception):
    """A stream that ended without finishing."""


# ---------------------------------------------------------------------- profiles table


class ProfileTable(list):
    """A list of profiles that shows as a table in a notebook (keys masked)."""

    COLUMNS = ("name", "region", "key", "workspace", "models", "budget", "source")

    def rows(self) -> list[dict[str, Any]]:
        """One dict per profile, safe to show (``Profile.summary()``)."""
        return [p.summary() for p in self]

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{c}</th>" for c in self.COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(r[c] if r[c] is not None else '—'))}</td>"
                             for c in self.COLUMNS) + "</tr>"
            for r in self.rows()
        )
        if not self:
            body = f"<tr><td colspan='{len(self.COLUMNS)}'>no profiles</td></tr>"
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def _repr_markdown_(self) -> str:
        lines = ["| " + " | ".join(self.COLUMNS) + " |", "|" + "---|" * len(self.COLUMNS)]
        for r in self.rows():
            lines.append("| " + " | ".join(str(r[c] if r[c] is not None else "—") for c in self.COLUMNS) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        rows = [[str(r[c] if r[c] is not None else "-") for c in self.COLUMNS] for r in self.rows()]
        widths = [max([len(c)] + [len(row[i]) for row in rows]) for i, c in enumerate(self.COLUMNS)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        return "\n".join([fmt.format(*self.COLUMNS)] + [fmt.format(*row) for row in rows])


# ---------------------------------------------------------------------- the default session

_default: Session | None = None
#: guards ``_default``: checking for it and making it (connect) is one step
_default_lock = threading.RLock()
_emulator_notice_shown = False


def _emulator_notice(url: str, started: bool) -> None:
    global _emulator_notice_shown
    if _emulator_notice_shown:
        return
    _emulator_notice_shown = True
    how = "started a local Model Studio emulator at" if started else "using the Model Studio emulator at"
    print(f"qwen-nb: no API key found (DASHSCOPE_API_KEY / QWEN_NB_<NAME>_API_KEY); {how} {url} "
          "— answers are canned and nothing leaves this machine.")


def connect(
    profiles: Mapping[str, Profile] | None = None,
    *,
    dotenv_path: str | os.PathLike | None = None,
    **kw: Any,
) -> Session:
    """Make (and return) the default session, replacing the previous one.

    Profiles come from ``profiles`` or else the environment / ``.env``. With no key anywhere
    the session talks to the emulator: the one at ``$QWEN_NB_EMULATOR`` if set, else one
    started in this process; such a session records its (demo) calls in ``$QWEN_NB_LEDGER`` if
    set, else in memory, never in the per-user ledger file. ``kw`` goes to ``Session``
    (``default_model``, ``max_retries``, ``ledger``, ``hard_budget``, ...).
    """
    global _default
    with _default_lock:
        emulator = None
        regions = kw.pop("regions", None)
        if profiles is None:
            profiles = load_profiles(dotenv_path=dotenv_path)
        if not profiles:
            url = os.environ.get("QWEN_NB_EMULATOR", "").strip().rstrip("/")
            if url:
                from qwen_nb.emulator.config import running_profiles
                from qwen_nb.regions import emulator_regions

                profiles, regions = running_profiles(url), emulator_regions(url)
                _emulator_notice(url, started=False)
            else:
                from qwen_nb.emulator import Emulator

                emulator = Emulator()
                emulator.start()
                profiles, regions = emulator.profiles(), emulator.regions()
                _emulator_notice(emulator.url, started=True)
        try:
            session = Session(profiles, regions=regions, **kw)
        except BaseException:
            if emulator is not None:
                emulator.stop()
            raise
        session._emulator = emulator
        if emulator is not None:
            session.on_emulator = True
        old, _default = _default, session
    if old is not None:
        old.close()
    return session


def default_session() -> Session:
    """The default session, made by ``connect()`` on first use (once, even when threads race to it)."""
    session = _default
    if session is not None:
        return session
    with _default_lock:
        if _default is None:
            connect()
        return _default  # type: ignore[return-value]


def set_default_session(session: Session | None) -> Session | None:
    """Make ``session`` the one the module-level functions (and widgets, magics) use; returns the previous one.

    The previous session is not closed (``connect()`` closes the session it replaces). ``None``
    forgets the default: the next use connects again.
    """
    global _default
    if session is not None and not callable(getattr(session, "chat", None)):
        raise InputError(f"set_default_session() takes a Session (or None), got {type(session).__name__}.",
                         fix="Pass a qwen_nb.Session, e.g. set_default_session(Session(profiles)).")
    with _default_lock:
        old, _default = _default, session
    return old


def chat(prompt_or_messages: Any, **kw: Any) -> ChatResult:
    """``Session.chat`` on the default session."""
    return default_session().chat(prompt_or_messages, **kw)


def stream_chat(prompt_or_messages: Any, **kw: Any) -> ChatStream:
    """``Session.stream_chat`` on the default session."""
    return default_session().stream_chat(prompt_or_messages, **kw)


async def achat(prompt_or_messages: Any, **kw: Any) -> ChatResult:
    """``Session.achat`` on the default session."""
    return await default_session().achat(prompt_or_messages, **kw)


def astream_chat(prompt_or_messages: Any, **kw: Any) -> AsyncChatStream:
    """``Session.astream_chat`` on the default session."""
    return default_session().astream_chat(prompt_or_messages, **kw)


def chat_many(prompts: Sequence[Any], **kw: Any) -> list[ChatResult | QwenNbError]:
    """``Session.chat_many`` on the default session."""
    return default_session().chat_many(prompts, **kw)


def list_models(profile: str | None = None, api: str = "openai") -> list[str]:
    """``Session.list_models`` on the default session."""
    return default_session().list_models(profile, api=api)


def profiles() -> ProfileTable:
    """The default session's profiles as a table (keys masked)."""
    return ProfileTable(default_session().profiles())


def add_profile(name: str, key: str, region: str = "ap-southeast-1", workspace: str | None = None,
                models: Sequence[str] | None = None, budget: float | None = None) -> Profile:
    """``Session.add_profile`` on the default session."""
    return default_session().add_profile(name, key, region=region, workspace=workspace, models=models,
                                         budget=budget)
