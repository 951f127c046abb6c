"""The process-default session and the module-level API (``qwen_nb.chat`` ...): where an emulator is passed in.

``connect()`` makes the default session (and with no key anywhere, talks to an emulator:
the one at ``$QWEN_NB_EMULATOR``, or one it starts); the module-level functions, the
widgets and the magics use that session. The core (``qwen_nb.session`` and below) never
imports the emulator: this facade hands one in.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from qwen_nb._profiles import Profile, ProfileTable, load_profiles
from qwen_nb._settings import ConfigReport, Settings
from qwen_nb.errors import InputError, QwenNbError
from qwen_nb.results import ChatResult
from qwen_nb.session import AsyncChatStream, ChatStream, GrantResult, Session

if TYPE_CHECKING:
    from qwen_nb.ledger import Ledger, UsageReport

__all__ = [
    "achat", "achat_many", "add_profile", "astream_chat", "chat", "chat_many", "connect", "default_session",
    "explain_config",
    "grant", "granted_models", "list_models", "profiles", "revoke", "set_default_session", "stream_chat", "usage",
    "embed", "rerank", "image", "speak", "transcribe", "respond",
]

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
    dotenv_path: str | os.PathLike[str] | None = None,
    emulator: Any = None,
    **kw: Any,
) -> Session:
    """Make (and return) the default session, replacing the previous one.

    Profiles come from ``profiles`` or else the settings (environment, ``.env``, user config
    file). ``emulator``: a started ``qwen_nb.Emulator`` to talk to (its profiles and hosts;
    the session stops it when closed). With no key anywhere the session talks to an emulator:
    the one at ``$QWEN_NB_EMULATOR`` if set (with ``$QWEN_NB_EMULATOR_KEY``, a class handout's key:
    only that key's workspace), else one started in this process; such a session
    records its (demo) calls in ``$QWEN_NB_LEDGER`` if set, else in memory, never in the
    per-user ledger file. ``kw`` goes to ``Session`` (``default_model``, ``max_retries``,
    ``ledger``, ``hard_budget``, ...).
    """
    global _default
    with _default_lock:
        regions = kw.pop("regions", None)
        if profiles is None and emulator is None:
            profiles = load_profiles(dotenv_path=dotenv_path)
        if emulator is None and not profiles:
            settings = Settings(dotenv_path=dotenv_path)
            url = (settings.get("QWEN_NB_EMULATOR") or "").rstrip("/")
            if url:
                from qwen_nb.emulator.config import running_profiles
                from qwen_nb.emulator.hosts import emulator_regions

                # QWEN_NB_EMULATOR_KEY (a class handout's key): that key's own workspace, asked with the key;
                # an emulator that does not answer raises: never another emulator's (demo) profiles
                profiles = running_profiles(url, key=settings.get("QWEN_NB_EMULATOR_KEY"))
                regions = emulator_regions(url)
                _emulator_notice(url, started=False)
            else:
                from qwen_nb.emulator import Emulator

                emulator = Emulator()
                emulator.start()
                _emulator_notice(emulator.url, started=True)
        if emulator is not None:
            profiles = profiles or emulator.profiles()
            regions = regions or emulator.regions()
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


async def achat_many(prompts: Sequence[Any], **kw: Any) -> list[ChatResult | QwenNbError]:
    """``Session.achat_many`` on the default session."""
    return await default_session().achat_many(prompts, **kw)


def list_models(profile: str | None = None, api: str = "openai") -> list[str]:
    """``Session.list_models`` on the default session."""
    return default_session().list_models(profile, api=api)


def granted_models(profile: str | None = None, *, refresh: bool = False) -> list[str]:
    """``Session.granted_models`` on the default session: a workspace's grants, from the service's list."""
    return default_session().granted_models(profile, refresh=refresh)


def grant(models: str | Sequence[str], profile: str | None = None) -> GrantResult:
    """``Session.grant`` on the default session: grant models to a profile's workspace."""
    return default_session().grant(models, profile)


def revoke(models: str | Sequence[str], profile: str | None = None) -> GrantResult:
    """``Session.revoke`` on the default session: take models away from a profile's workspace."""
    return default_session().revoke(models, profile)


def profiles() -> ProfileTable:
    """The default session's profiles as a table (keys masked)."""
    return ProfileTable(default_session().profiles())


def usage(since: Any = None, by: str = "workspace", ledger: Ledger | None = None) -> UsageReport:
    """Usage and cost report of the default session's ledger (or of ``ledger``)."""
    if ledger is None:
        ledger = default_session().ledger
    return ledger.report(since=since, by=by)


def explain_config(dotenv_path: str | os.PathLike[str] | None = None) -> ConfigReport:
    """Each setting qwen-nb reads, its value (keys masked) and where it came from (explicit, environment, .env ...)."""
    return Settings(dotenv_path=dotenv_path).explain()


def add_profile(name: str, key: str, region: str = "ap-southeast-1", workspace: str | None = None,
                models: Sequence[str] | None = None, budget: float | None = None,
                base_url: str | None = None) -> Profile:
    """``Session.add_profile`` on the default session."""
    return default_session().add_profile(name, key, region=region, workspace=workspace, models=models,
                                         budget=budget, base_url=base_url)


# ---------------------------------------------------------------------------------------------- beyond chat


def embed(texts: Any, **kw: Any) -> Any:
    """``Session.embed`` on the default session: texts → ``EmbeddingResult``."""
    return default_session().embed(texts, **kw)


def rerank(query: str, documents: Sequence[str], **kw: Any) -> Any:
    """``Session.rerank`` on the default session: documents ranked for a query → ``RerankResult``."""
    return default_session().rerank(query, documents, **kw)


def image(prompt: str, **kw: Any) -> Any:
    """``Session.image`` on the default session: a prompt → ``ImageResult`` (saved locally at once)."""
    return default_session().image(prompt, **kw)


def speak(text: str, **kw: Any) -> Any:
    """``Session.speak`` on the default session: text → ``SpeechResult`` (an audio player)."""
    return default_session().speak(text, **kw)


def transcribe(audio: Any, **kw: Any) -> Any:
    """``Session.transcribe`` on the default session: audio → ``TranscriptResult``."""
    return default_session().transcribe(audio, **kw)


def respond(input: Any, **kw: Any) -> Any:
    """``Session.respond`` on the default session: the Responses API → ``ResponseResult``."""
    return default_session().respond(input, **kw)
