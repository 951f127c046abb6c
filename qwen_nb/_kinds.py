"""The calls beyond chat (embed, rerank, image, speak, transcribe, respond): checked, sent through the pipeline.

Each call is checked before anything is sent (a clear ``InputError`` naming what is wrong),
goes through the session's pipeline (retries, guided errors from the service-facts table) and
leaves one ledger row with its kind, usage and cost. Service facts (models, regions, rows per
request, sizes, voices, paths) come from ``qwen_nb.facts``; nothing here repeats them.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
import time
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qwen_nb import facts
from qwen_nb._guidance import ServiceFailure, guided_error
from qwen_nb._pipeline import Call, CancelToken, Tracker, _cost, base_url_for, detach
from qwen_nb._secrets import refuse_key
from qwen_nb.errors import InputError, QwenNbError, ServiceError
from qwen_nb.media import (
    EmbeddingResult,
    ImageResult,
    RankedDocument,
    RerankResult,
    ResponseEvent,
    ResponseResult,
    ResponseStep,
    SavedImage,
    SpeechResult,
    TranscriptResult,
)
from qwen_nb.requests import ChatRequest, check_api
from qwen_nb.results import Usage

if TYPE_CHECKING:
    from qwen_nb.session import Session

#: where images and speech are saved unless the caller names a folder
DEFAULT_IMAGE_FOLDER = "qwen_images"
DEFAULT_AUDIO_FOLDER = "qwen_audio"
#: most bytes of audio sent inline: its base64 data URL must stay within the service's limit
MAX_INLINE_AUDIO = facts.ASR_MAX_DATA_URL_BYTES * 3 // 4 - 1024
#: most seconds an image task is waited for before giving up (the task goes on; its id is in the error)
DEFAULT_TASK_WAIT = 600.0

_KIND_WORDS = {"embedding": "an embedding", "rerank": "a rerank", "image": "a text-to-image", "tts": "a speech",
               "asr": "a speech-recognition", "responses": "a Responses API"}


# ---------------------------------------------------------------------------------------------- checks


def _kind_model(kind: str, model: Any, region: str) -> facts.KindModel:
    refuse_key(model, "model")
    if not isinstance(model, str) or not model.strip():
        raise InputError(f"model must be the name of {_KIND_WORDS[kind]} model, got {model!r}.",
                         fix=f"Use one of: {', '.join(facts.kind_models(kind))}.")
    info = facts.kind_model(model.strip())
    if info is None or info.kind != kind:
        import difflib

        names = facts.kind_models(kind)
        close = difflib.get_close_matches(model, names, n=1, cutoff=0.5)
        what = "" if info is None else f" (it is {_KIND_WORDS[info.kind]} model)"
        raise InputError(f"{model!r} is not {_KIND_WORDS[kind]} model{what}."
                         + (f" Did you mean {close[0]!r}?" if close else ""),
                         fix=f"{_KIND_WORDS[kind].capitalize()} model: {', '.join(names)}.")
    if region not in info.regions:
        raise InputError(f"{info.id!r} is not offered in region {region}.",
                         fix=f"It is offered in {', '.join(info.regions)}: use a profile of one of those regions; "
                         f"models of this kind in {region}: {', '.join(facts.kind_models(kind, region)) or 'none'}.")
    return info


def _api(kind: str, info: facts.KindModel, api: str | None) -> str:
    if api is None:
        return info.apis[0]
    api = check_api(api)
    if api not in info.apis:
        raise InputError(f"{info.id} ({kind}) is served on the {' and '.join(info.apis)} API only, not {api!r}.",
                         fix=f'Leave api out, or use api="{info.apis[0]}".')
    return api


def _call(session: Session, kind: str, model: str, profile: Any, api: str) -> Call:
    prof = session._keyed_profile(profile)
    region = session.region(prof.name)
    session._refuse_over_budget(prof, region, model, api)
    return Call(prof, region, api, ChatRequest(model=model, messages=[]), base_url_for(prof, region, api), kind=kind)


def _region_of(session: Session, profile: Any) -> str:
    return session.get_profile(profile).region


def _positive(name: str, value: Any, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (high is not None and value > high):
        bound = f" from 1 to {high}" if high is not None else " of at least 1"
        raise InputError(f"{name} must be an integer{bound}, got {value!r}.", fix=f"Use e.g. {name}=1.")
    return value


def _text(name: str, value: Any, limit: int = 0) -> str:
    refuse_key(value, name)
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} must be a non-empty string, got {value!r}.")
    if limit and len(value) > limit:
        raise InputError(f"{name} has {len(value)} characters, more than the {limit} the model takes.",
                         fix="Split it into shorter pieces.")
    return value


class _Record:
    """The one ledger row of a call made of several requests (batches, a task and its polls)."""

    def __init__(self, session: Session, call: Call) -> None:
        self.session, self.call = session, call
        self.t0 = time.perf_counter()
        self.attempts = 0
        self.request_ids: list[str] = []

    def run(self, attempt: Any) -> Any:
        tracker: Tracker
        tracker, value = self.session.pipeline._run(self.call, attempt)
        self.attempts += tracker.attempts
        rid = getattr(value, "request_id", None)
        if isinstance(rid, str) and rid:
            self.request_ids.append(rid)
        return value

    def ok(self, usage: Usage, *, priced: bool = True) -> tuple[float | None, str | None, float]:
        cost, currency = _cost(self.call, usage) if priced else (None, None)
        latency = time.perf_counter() - self.t0
        self.session.pipeline.record(self.call, status="ok", attempts=max(self.attempts, 1), latency=latency,
                                     usage=usage, request_id=self.request_ids[0] if self.request_ids else None,
                                     cost=cost, currency=currency)
        return cost, currency, latency

    def provenance(self, usage: Usage, cost: float | None, currency: str | None, latency: float) -> dict[str, Any]:
        call = self.call
        return {"model": call.req.model, "api": call.api, "profile": call.profile.name, "region": call.profile.region,
                "workspace": call.profile.workspace, "usage": usage, "cost": cost, "currency": currency,
                "request_ids": tuple(self.request_ids), "latency": latency, "attempts": max(self.attempts, 1)}

    def fail(self, failure: ServiceFailure) -> QwenNbError:
        """The guided error of a failure the service reported inside an answer (a failed task), recorded."""
        err = guided_error(failure, self.session._context(self.call, max(self.attempts, 1), failure))
        latency = time.perf_counter() - self.t0
        self.session.pipeline.record(self.call, status="error", attempts=max(self.attempts, 1), latency=latency,
                                     request_id=failure.request_id, error_code=err.code or type(err).__name__)
        return detach(err)


# ---------------------------------------------------------------------------------------------- embeddings


def embed(session: Session, texts: Any, *, model: str = "text-embedding-v4", dimensions: int | None = None,
          profile: Any = None, api: str | None = None, batch_size: int | None = None,
          concurrency: int = 1) -> EmbeddingResult:
    from qwen_nb.backends import kinds

    info = _kind_model("embedding", model, _region_of(session, profile))
    api = _api("embedding", info, api if api is not None else session.default_api)
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence) or isinstance(texts, (bytes, bytearray)) or not texts:
        raise InputError(f"texts must be a string or a non-empty list of strings, got {_short(texts)}.",
                         fix='E.g. q.embed(["first text", "second text"]).')
    items = list(texts)
    for i, t in enumerate(items):
        if not isinstance(t, str) or not t.strip():
            raise InputError(f"texts[{i}] must be a non-empty string, got {_short(t)}.",
                             fix="Drop empty items, or turn each item into text first.")
    refuse_key(items, "texts")
    if dimensions is not None:
        if isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions not in info.dimensions:
            raise InputError(f"dimensions={dimensions!r} is not a size {info.id} returns.",
                             fix=f"Use one of {', '.join(map(str, sorted(info.dimensions, reverse=True)))} "
                             f"(default {info.dimensions[0]}).")
    size = info.max_rows if batch_size is None else _positive("batch_size", batch_size, info.max_rows)
    workers = _positive("concurrency", concurrency, 64)
    call = _call(session, "embedding", info.id, profile, api)
    rec = _Record(session, call)
    batches = [items[i:i + size] for i in range(0, len(items), size)]

    def one(batch: list[str]) -> Any:
        return rec.run(lambda backend: kinds.embed(backend, info.id, batch, dimensions))

    if workers > 1 and len(batches) > 1:
        with ThreadPoolExecutor(max_workers=min(workers, len(batches))) as pool:
            answers = list(pool.map(one, batches))
    else:
        answers = [one(b) for b in batches]
    vectors = [v for a in answers for v in a.vectors]
    if len(vectors) != len(items):
        raise ServiceError(f"The service returned {len(vectors)} vectors for {len(items)} texts.",
                           fix="Retry; if it persists, send smaller batches (batch_size=...).")
    usage = Usage()
    for a in answers:
        usage = usage + a.usage
    cost, currency, latency = rec.ok(usage)
    dim = len(vectors[0]) if vectors else 0
    return EmbeddingResult(texts=tuple(items), vectors=vectors, dimensions=dim, batches=len(batches),
                           **rec.provenance(usage, cost, currency, latency))


# ---------------------------------------------------------------------------------------------- rerank


def rerank(session: Session, query: Any, documents: Any, *, model: str | None = None, top_n: int | None = None,
           profile: Any = None, api: str | None = None) -> RerankResult:
    from qwen_nb.backends import kinds

    region = _region_of(session, profile)
    if model is None:
        choices = facts.kind_models("rerank", region)
        model = choices[0] if choices else "qwen3-rerank"
    info = _kind_model("rerank", model, region)
    api = _api("rerank", info, api)
    q = _text("query", query)
    if isinstance(documents, str) or not isinstance(documents, Sequence) or not documents:
        raise InputError(f"documents must be a non-empty list of strings, got {_short(documents)}.",
                         fix='E.g. q.rerank("question", ["doc one", "doc two"]).')
    docs = list(documents)
    if len(docs) > info.max_rows:
        raise InputError(f"{len(docs)} documents, more than the {info.max_rows} {info.id} ranks in one request.",
                         fix="Narrow the candidates first (e.g. with q.embed similarity) and rerank the best.")
    for i, d in enumerate(docs):
        if not isinstance(d, str) or not d.strip():
            raise InputError(f"documents[{i}] must be a non-empty string, got {_short(d)}.")
    refuse_key(docs, "documents")
    n = None if top_n is None else _positive("top_n", top_n, len(docs))
    call = _call(session, "rerank", info.id, profile, api)
    rec = _Record(session, call)
    ans = rec.run(lambda backend: kinds.rerank(backend, info.id, q, docs, n))
    cost, currency, latency = rec.ok(ans.usage)
    ranked = tuple(RankedDocument(i, round(s, 6), docs[i]) for i, s in ans.results if 0 <= i < len(docs))
    return RerankResult(query=q, ranked=ranked, **rec.provenance(ans.usage, cost, currency, latency))


# ---------------------------------------------------------------------------------------------- images

_SIZE = re.compile(r"^\s*(\d{2,5})\s*[*xX×]\s*(\d{2,5})\s*$")


def _slug(text: str, data: bytes, ext: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-") or "item"
    return f"{words}-{hashlib.sha256(data).hexdigest()[:8]}.{ext}"


def _folder(folder: Any, default: str) -> Path:
    if folder is None:
        folder = default
    if not isinstance(folder, (str, Path)) or not str(folder).strip():
        raise InputError(f"folder must be a directory path, got {folder!r}.", fix=f'E.g. folder="{default}".')
    path = Path(folder).expanduser()
    if path.exists() and not path.is_dir():
        raise InputError(f"folder {str(path)!r} exists and is not a directory.", fix="Name a directory.")
    return path


def image(session: Session, prompt: Any, *, model: str = "wan2.6-t2i", size: str | None = None, n: int = 1,
          profile: Any = None, folder: Any = None, sync: bool | None = None, progress: bool = True,
          wait: float = DEFAULT_TASK_WAIT) -> ImageResult:
    from qwen_nb.backends import kinds

    info = _kind_model("image", model, _region_of(session, profile))
    text = _text("prompt", prompt)
    count = _positive("n", n, info.max_rows)
    if size is None:
        size = info.options[0]
    m = _SIZE.match(size) if isinstance(size, str) else None
    if m is None or not all(256 <= int(v) <= 2048 for v in m.groups()):
        raise InputError(f"size must be 'WIDTH*HEIGHT' with each side from 256 to 2048, got {size!r}.",
                         fix=f"E.g. size=\"{info.options[0]}\" ({info.id}'s sizes include {', '.join(info.options)}).")
    size = f"{m.group(1)}*{m.group(2)}"
    if sync is None:
        sync = "sync" in info.modes
    elif sync and "sync" not in info.modes:
        raise InputError(f"{info.id} has no synchronous API: it is served through the task API only.",
                         fix="Leave sync out (or sync=False): the task is submitted and waited for.")
    where = _folder(folder, DEFAULT_IMAGE_FOLDER)
    call = _call(session, "image", info.id, profile, "dashscope")
    rec = _Record(session, call)
    task = rec.run(lambda backend: kinds.image_submit(backend, info.id, text, size, count, sync))
    if not sync:
        task = _wait_task(rec, task, progress, wait)
    if task.status and task.status != "SUCCEEDED" or not task.urls:
        raise rec.fail(ServiceFailure("status", status=None, code=task.code or "InternalError",
                                      message=task.message or f"The image task ended {task.status or 'empty'}.",
                                      request_id=task.request_id))
    where.mkdir(parents=True, exist_ok=True)
    saved = []
    for url in task.urls:
        data = kinds.download(url)
        path = where / _slug(text, data, "png" if data[:4] == b"\x89PNG" else "jpg")
        path.write_bytes(data)
        saved.append(SavedImage(path, url, data))
    usage = Usage()
    cost, currency, latency = rec.ok(usage, priced=False)
    return ImageResult(prompt=text, size=size, images=tuple(saved), mode="sync" if sync else "async",
                       task_id=task.task_id, **rec.provenance(usage, cost, currency, latency))


def _wait_task(rec: _Record, task: Any, progress: bool, wait: float) -> Any:
    from qwen_nb.backends import kinds

    if not task.task_id:
        return task
    shown = _Progress(progress)
    delay, start = 0.2, time.perf_counter()
    try:
        while task.status in facts.TASK_PENDING or not task.status:
            shown.update(f"image task {task.status or 'PENDING'} … {time.perf_counter() - start:.0f} s")
            if time.perf_counter() - start > wait:
                raise ServiceError(f"The image task {task.task_id} did not finish within {wait:g} s; it goes on.",
                                   fix=f"Wait longer (wait=...), or fetch it later: GET /api/v1/tasks/{task.task_id}.")
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
            task = rec.run(lambda backend, task_id=task.task_id: kinds.image_fetch(backend, task_id))
    finally:
        shown.close()
    return task


class _Progress:
    """A one-line progress display in a notebook (a display handle updated in place, cleared at the end)."""

    def __init__(self, on: bool) -> None:
        self.handle: Any = None
        if on:
            try:
                from IPython import get_ipython
                from IPython.display import display

                if get_ipython() is not None:
                    self.handle = display({"text/plain": ""}, raw=True, display_id=True)
            except Exception:
                self.handle = None

    def update(self, text: str) -> None:
        if self.handle is not None:
            self.handle.update({"text/plain": text}, raw=True)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.update({"text/plain": ""}, raw=True)


# ---------------------------------------------------------------------------------------------- speech


def speak(session: Session, text: Any, *, voice: str | None = None, model: str = "qwen3-tts-flash",
          profile: Any = None, folder: Any = None) -> SpeechResult:
    from qwen_nb.backends import kinds

    info = _kind_model("tts", model, _region_of(session, profile))
    said = _text("text", text, info.max_input)
    if voice is None:
        voice = info.options[0]
    names = {v.lower(): v for v in info.options}
    if not isinstance(voice, str) or voice.strip().lower() not in names:
        raise InputError(f"voice {voice!r} is not a voice of {info.id}.", fix=f"Use one of: {', '.join(info.options)}.")
    voice = names[voice.strip().lower()]
    where = _folder(folder, DEFAULT_AUDIO_FOLDER)
    call = _call(session, "tts", info.id, profile, "dashscope")
    rec = _Record(session, call)
    ans = rec.run(lambda backend: kinds.speak(backend, info.id, said, voice))
    data = ans.data or (kinds.download(ans.url) if ans.url else b"")
    if not data:
        raise rec.fail(ServiceFailure("status", code="InternalError", message="The answer held no audio.",
                                      request_id=ans.request_id))
    fmt = "wav" if data[:4] == b"RIFF" else "mp3"
    where.mkdir(parents=True, exist_ok=True)
    path = where / _slug(said, data, fmt)
    path.write_bytes(data)
    usage = ans.usage
    cost, currency, latency = rec.ok(usage, priced=False)
    return SpeechResult(text=said, voice=voice, audio=data, format=fmt, path=path, url=ans.url,
                        characters=ans.characters, **rec.provenance(usage, cost, currency, latency))


def _audio_source(audio: Any) -> tuple[str, str]:
    """(what to send: a URL or a data URL, a label for the result)."""
    if isinstance(audio, SpeechResult):
        return _data_url(audio.audio, f"x.{audio.format}"), str(audio.path or "speech")
    if isinstance(audio, (bytes, bytearray)):
        return _data_url(bytes(audio), "x.wav"), f"{len(audio)} bytes"
    if isinstance(audio, str) and audio.startswith(("http://", "https://", "data:")):
        return audio, audio[:80] if not audio.startswith("data:") else "data URL"
    if isinstance(audio, (str, Path)):
        path = Path(audio).expanduser()
        if not path.is_file():
            raise InputError(f"No audio file at {str(path)!r}.",
                             fix="Pass a path to a WAV/MP3 file, its bytes, an http(s) URL, or a SpeechResult.")
        return _data_url(path.read_bytes(), path.name), path.name
    raise InputError(f"audio must be a file path, bytes, an http(s) URL or a SpeechResult, got {_short(audio)}.")


def _data_url(data: bytes, name: str) -> str:
    if not data:
        raise InputError("The audio is empty.", fix="Pass a recording with some sound in it.")
    if len(data) > MAX_INLINE_AUDIO:
        limit = facts.ASR_MAX_DATA_URL_BYTES // 2**20
        raise InputError(f"The audio has {len(data) / 2**20:.1f} MiB, more than the {MAX_INLINE_AUDIO / 2**20:.1f} MiB "
                         f"that can be sent inline (the service takes {limit} MB of base64).",
                         fix=f"Upload it and pass its https URL, or send a shorter clip (up to "
                         f"{facts.ASR_MAX_SECONDS // 60} minutes).")
    mime = "audio/wav" if data[:4] == b"RIFF" else mimetypes.guess_type(name)[0] or "audio/mpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def transcribe(session: Session, audio: Any, *, model: str = "qwen3-asr-flash", profile: Any = None,
               api: str | None = None) -> TranscriptResult:
    from qwen_nb.backends import kinds

    info = _kind_model("asr", model, _region_of(session, profile))
    api = _api("asr", info, api)
    source, label = _audio_source(audio)
    call = _call(session, "asr", info.id, profile, api)
    rec = _Record(session, call)
    comp = rec.run(lambda backend: kinds.transcribe(backend, info.id, source))
    usage = comp.usage or Usage()
    cost, currency, latency = rec.ok(usage)
    return TranscriptResult(text=comp.text, source=label, **rec.provenance(usage, cost, currency, latency))


# ---------------------------------------------------------------------------------------------- responses


def _tools(tools: Any) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if isinstance(tools, (str, dict)):
        tools = [tools]
    if not isinstance(tools, Sequence):
        raise InputError(f"tools must be a list of tool names or tool objects, got {_short(tools)}.",
                         fix=f"E.g. tools={list(facts.RESPONSE_TOOLS[:2])!r}.")
    out = []
    for t in tools:
        name = t if isinstance(t, str) else t.get("type") if isinstance(t, dict) else None
        if name == "function" and isinstance(t, dict):
            out.append(dict(t))
            continue
        if name not in facts.RESPONSE_TOOLS:
            raise InputError(f"Unknown built-in tool {t!r}.",
                             fix=f"The Responses API's built-in tools: {', '.join(facts.RESPONSE_TOOLS)} (or a "
                             '{"type": "function", ...} tool).')
        out.append(dict(t) if isinstance(t, dict) else {"type": name})
    return out


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _step(item: Any) -> ResponseStep | None:
    kind = str(_field(item, "type") or "")
    if kind in ("message", ""):
        return None
    status = str(_field(item, "status") or "")
    iid = str(_field(item, "id") or "")
    if kind == "web_search_call":
        action = _field(item, "action") or {}
        query = _field(action, "query") or _field(item, "query") or ""
        sources = _field(action, "sources") or []
        urls = [str(_field(s, "url") or "") for s in sources]
        return ResponseStep(kind, str(query), status, ", ".join(u for u in urls if u), iid)
    if kind == "code_interpreter_call":
        outs = _field(item, "outputs") or []
        text = "\n".join(str(_field(o, "logs") or _field(o, "url") or "") for o in outs)
        return ResponseStep(kind, str(_field(item, "code") or ""), status, text.strip(), iid)
    if kind == "function_call":
        return ResponseStep(kind, f"{_field(item, 'name')}({_field(item, 'arguments') or ''})", status, "", iid)
    if kind == "reasoning":
        summary = _field(item, "summary") or []
        text = " ".join(str(_field(s, "text") or "") for s in summary)
        return ResponseStep(kind, text, status, "", iid)
    detail = _field(item, "url") or _field(item, "query") or _field(item, "name") or ""
    return ResponseStep(kind, str(detail), status, str(_field(item, "output") or ""), iid)


def _message_text(item: Any) -> str:
    if str(_field(item, "type") or "") != "message":
        return ""
    return "".join(str(_field(c, "text") or "") for c in (_field(item, "content") or [])
                   if _field(c, "type") == "output_text")


def _response_result(rec: _Record, resp: Any, previous: str | None) -> ResponseResult:
    from qwen_nb.normalize import usage as read_usage

    items = list(_field(resp, "output") or [])
    steps = tuple(s for s in (_step(i) for i in items) if s is not None)
    text = "".join(_message_text(i) for i in items)
    rid = _field(resp, "id")
    if isinstance(rid, str):
        rec.request_ids.append(rid)
    usage = read_usage(_field(resp, "usage")) or Usage()
    cost, currency, latency = rec.ok(usage)
    return ResponseResult(id=str(rid or ""), text=text, steps=steps, previous_response_id=previous,
                          status=str(_field(resp, "status") or ""), **rec.provenance(usage, cost, currency, latency))


def _respond_call(session: Session, input: Any, model: str, tools: Any, previous_response_id: Any,
                  profile: Any, extra: dict[str, Any]) -> tuple[_Record, facts.KindModel, Any, list[dict[str, Any]]]:
    info = _kind_model("responses", model, _region_of(session, profile))
    if isinstance(input, str):
        _text("input", input)
    elif not isinstance(input, Sequence) or not input or not all(isinstance(m, dict) for m in input):
        raise InputError(f"input must be a string or a list of messages, got {_short(input)}.",
                         fix='E.g. q.respond("What is new in Qwen3?", tools=["web_search"]).')
    refuse_key(input, "input")
    if previous_response_id is not None and (not isinstance(previous_response_id, str)
                                             or not previous_response_id.strip()):
        raise InputError(f"previous_response_id must be the id of an earlier response, got {previous_response_id!r}.",
                         fix="Pass result.id of the answer to continue from.")
    cancel = extra.pop("cancel", None)
    if cancel is not None and not isinstance(cancel, CancelToken):
        raise InputError(f"cancel must be a qwen_nb CancelToken, got {type(cancel).__name__}.")
    for key in extra:
        if key in ("stream", "model", "input", "tools", "previous_response_id"):
            raise InputError(f"{key} is set by respond() itself.")
    call = _call(session, "responses", info.id, profile, "openai")
    call.cancel = cancel
    return _Record(session, call), info, input, _tools(tools)


def respond(session: Session, input: Any, *, model: str = "qwen3-max-2026-01-23", tools: Any = None,
            previous_response_id: str | None = None, profile: Any = None, **extra: Any) -> ResponseResult:
    from qwen_nb.backends import kinds

    rec, info, inp, tool_list = _respond_call(session, input, model, tools, previous_response_id, profile, extra)
    resp = rec.run(lambda backend: kinds.respond(backend, info.id, inp, tool_list, previous_response_id, False,
                                                 extra))
    return _response_result(rec, resp, previous_response_id)


class ResponseStream:
    """A streamed Responses API answer: iterate for ``ResponseEvent`` (tool steps as they finish, text pieces);
    ``.result`` is the ``ResponseResult`` once the stream ended (read to the end if needed)."""

    def __init__(self, rec: _Record, raw: Any, tracker: Tracker, previous: str | None) -> None:
        self._rec, self._raw, self._tracker, self._previous = rec, raw, tracker, previous
        self._result: ResponseResult | None = None
        self._events = self._iterate()

    def __iter__(self) -> Iterator[ResponseEvent]:
        return self._events

    def __next__(self) -> ResponseEvent:
        return next(self._events)

    def _iterate(self) -> Generator[ResponseEvent, None, None]:
        failed: Exception | None = None
        token = self._rec.call.cancel
        try:
            for event in self._raw:
                if token is not None and token.cancelled:  # Stop: what was received is recorded, nothing more read
                    self._tracker.interrupted(None, "Cancelled")
                    break
                kind = _field(event, "type")
                if kind == "response.output_item.done":
                    step = _step(_field(event, "item"))
                    if step is not None:
                        yield ResponseEvent("step", step=step)
                elif kind == "response.output_text.delta":
                    yield ResponseEvent("text", text=str(_field(event, "delta") or ""))
                elif kind in ("response.completed", "response.incomplete", "response.failed"):
                    self._result = _response_result(self._rec, _field(event, "response"), self._previous)
                    yield ResponseEvent("done", result=self._result)
        except Exception as exc:
            failed = exc
        finally:
            close = getattr(self._raw, "close", None)
            if close is not None:
                close()
        if failed is not None:
            self._tracker.failure(failed, received=True)

    @property
    def result(self) -> ResponseResult:
        """The whole answer (reads the rest of the stream)."""
        for _ in self._events:
            pass
        if self._result is None:
            raise ServiceError("The response stream ended without its final event.", fix="Make the call again.")
        return self._result

    def close(self) -> None:
        """Stop reading (the connection is closed)."""
        self._events.close()
        close = getattr(self._raw, "close", None)
        if close is not None:
            close()


def respond_stream(session: Session, input: Any, *, model: str = "qwen3-max-2026-01-23", tools: Any = None,
                   previous_response_id: str | None = None, profile: Any = None, **extra: Any) -> ResponseStream:
    from qwen_nb.backends import kinds

    rec, info, inp, tool_list = _respond_call(session, input, model, tools, previous_response_id, profile, extra)
    tracker, raw = session.pipeline._run(
        rec.call, lambda backend: kinds.respond(backend, info.id, inp, tool_list, previous_response_id, True, extra))
    rec.attempts += tracker.attempts
    return ResponseStream(rec, raw, tracker, previous_response_id)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


__all__ = ["DEFAULT_AUDIO_FOLDER", "DEFAULT_IMAGE_FOLDER", "ResponseStream", "embed", "image", "rerank", "respond",
           "respond_stream", "speak", "transcribe"]
