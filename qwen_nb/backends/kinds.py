"""Calls beyond chat through the two SDKs: embeddings, rerank, images, speech, transcripts and the Responses API.

Each function takes a backend (its SDK client is configured per profile, never through SDK
globals) and returns plain data qwen-nb's result types are built from. ``openai`` SDK: the
compatible endpoint (``client.embeddings``, ``client.chat.completions`` with ``input_audio``,
``client.responses``); ``dashscope`` SDK: the native one (``client.embeddings``, ``client.rerank``,
``client.images`` and its task API, ``client.audio.tts.http``, ``client.multimodal.chat``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from qwen_nb.normalize import Completion, from_native, from_openai, usage
from qwen_nb.results import Usage


@dataclass
class Vectors:
    """One embedding request's answer."""

    vectors: list[list[float]]
    usage: Usage
    request_id: str | None = None


def embed(backend: Any, model: str, texts: list[str], dimensions: int | None) -> Vectors:
    """One request of at most the model's rows per request."""
    if backend.api == "openai":
        kw: dict[str, Any] = {"model": model, "input": texts, "encoding_format": "float"}
        if dimensions is not None:
            kw["dimensions"] = dimensions
        # the raw answer, read with json.loads: the SDK's own model building visits every float in Python
        # (most of a large batch's client time); status errors still raise the SDK's exceptions
        raw = backend.client.embeddings.with_raw_response.create(**kw)
        body = raw.http_response.json()
        rows = sorted(body.get("data") or [], key=lambda d: d.get("index", 0))
        u = body.get("usage") or {}
        prompt = int(u.get("prompt_tokens") or 0)
        return Vectors([d["embedding"] for d in rows], Usage(prompt, 0, 0, int(u.get("total_tokens") or prompt)),
                       body.get("request_id") or body.get("id") or raw.http_response.headers.get("x-request-id"))
    resp = backend.client.embeddings.create(model=model, input=texts, dimension=dimensions)
    rows = sorted(resp.embeddings, key=lambda e: e.index)
    u = usage(resp.usage) or Usage()
    if not u.input_tokens and u.total_tokens:  # the native answer counts only total_tokens: all of them input
        u = Usage(u.total_tokens, 0, 0, u.total_tokens)
    return Vectors([list(e.embedding) for e in rows], u, getattr(resp, "request_id", None))


@dataclass
class Ranked:
    """One rerank request's answer: (index, score) pairs best first, with the documents when returned."""

    results: list[tuple[int, float]]
    usage: Usage
    request_id: str | None = None


def rerank(backend: Any, model: str, query: str, documents: list[str], top_n: int | None) -> Ranked:
    """The native text-rerank endpoint (``client.rerank.create``)."""
    resp = backend.client.rerank.create(model=model, query=query, documents=documents, top_n=top_n,
                                        return_documents=False)
    results = [(int(r.index), float(r.relevance_score)) for r in resp.results]
    u = resp.usage
    total = int(getattr(u, "total_tokens", 0) or getattr(u, "input_tokens", 0) or 0) if u is not None else 0
    return Ranked(results, Usage(total, 0, 0, total), getattr(resp, "request_id", None))


@dataclass
class ImageTask:
    """An image request: its task (async) or its finished answer (sync)."""

    task_id: str | None
    status: str
    urls: list[str] = field(default_factory=list)
    request_id: str | None = None
    count: int = 0
    message: str = ""
    code: str = ""


def _job(job: Any) -> ImageTask:
    usage_ = getattr(job, "usage", None)
    count = int(getattr(usage_, "image_count", 0) or 0) if usage_ is not None else 0
    out = job.output or {}
    return ImageTask(job.task_id or None, job.status or "", list(job.image_urls), getattr(job, "request_id", None),
                     count or len(job.image_urls), str(out.get("message") or ""), str(out.get("code") or ""))


def image_submit(backend: Any, model: str, prompt: str, size: str | None, n: int | None, sync: bool) -> ImageTask:
    """A synchronous image request (answered at once), or a task submitted with ``X-DashScope-Async: enable``."""
    images = backend.client.images
    if sync:
        return _job(images.generate(model=model, prompt=prompt, size=size, n=n))
    return _job(images.jobs.create(model=model, prompt=prompt, size=size, n=n))


def image_fetch(backend: Any, task_id: str) -> ImageTask:
    """``GET /tasks/{task_id}``: the task's status, and its image URLs once it succeeded."""
    return _job(backend.client.images.jobs.fetch(task_id))


@dataclass
class Audio:
    """A speech request's answer: where to fetch the audio, and how many characters were billed."""

    url: str
    usage: Usage
    characters: int
    request_id: str | None = None
    data: bytes = b""


def speak(backend: Any, model: str, text: str, voice: str) -> Audio:
    """Qwen-TTS over HTTP (``client.audio.tts.http.synthesize``): the audio comes back as a URL."""
    import base64

    with warnings.catch_warnings():  # "dashscope 2.0 audio API is a preview"
        warnings.simplefilter("ignore", FutureWarning)
        tts = backend.client.audio.tts.http
    resp = tts.synthesize(text, model=model, voice=voice)
    u = resp.usage or {}
    chars = int(u.get("characters") or 0)
    audio = (resp.output or {}).get("audio") or {}
    data = base64.b64decode(audio["data"]) if audio.get("data") else b""
    return Audio(resp.audio_url or "", Usage(int(u.get("input_tokens") or 0), int(u.get("output_tokens") or 0), 0,
                                             int(u.get("total_tokens") or 0)), chars,
                 getattr(resp, "request_id", None), data)


def transcribe(backend: Any, model: str, audio_url: str) -> Completion:
    """Speech recognition through chat: ``input_audio`` (compatible) or an ``audio`` part (native)."""
    if backend.api == "openai":
        resp = backend.client.chat.completions.create(model=model, messages=[{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": audio_url}}]}])
        return from_openai(resp)
    resp = backend.client.multimodal.chat.create(model=model, messages=[{"role": "user", "content": [
        {"audio": audio_url}]}])
    return from_native(resp)


def respond(backend: Any, model: str, input: Any, tools: list[dict[str, Any]], previous_response_id: str | None,
            stream: bool, extra: dict[str, Any]) -> Any:
    """``client.responses.create`` (the compatible endpoint's Responses API); a stream when ``stream``."""
    kw: dict[str, Any] = {"model": model, "input": input, **extra}
    if tools:
        kw["tools"] = tools
    if previous_response_id:
        kw["previous_response_id"] = previous_response_id
    if stream:
        kw["stream"] = True
    return backend.client.responses.create(**kw)


def response_items(resp: Any) -> Iterator[Any]:
    """The output items of a Responses API answer."""
    yield from (getattr(resp, "output", None) or [])


def download(url: str, *, timeout: float = 60.0, tries: int = 3) -> bytes:
    """The bytes at a result URL (the service's URLs are signed: no key is sent). Network errors are retried."""
    import time

    import httpx

    last: Exception | None = None
    for attempt in range(tries):
        try:
            r = httpx.get(url, timeout=timeout, follow_redirects=True)
            r.raise_for_status()
            return r.content
        except (httpx.TransportError, httpx.HTTPStatusError) as exc:
            last = exc
            if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code < 500:
                break
            time.sleep(0.2 * 2 ** attempt)
    from qwen_nb.errors import NetworkError
    from qwen_nb.facts import RESULT_URL_HOURS

    raise NetworkError(f"Could not download the result from the service's URL ({type(last).__name__}: "
                       f"{str(last)[:200]}).", fix=f"The URL may have expired (they last {RESULT_URL_HOURS} hours); "
                       "make the call again.") from None
