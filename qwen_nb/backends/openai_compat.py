"""The OpenAI-compatible endpoint (``/compatible-mode/v1``) through the ``openai`` SDK."""

from __future__ import annotations

from typing import Any

import openai

from qwen_nb._guidance import ServiceFailure
from qwen_nb._profiles import Profile
from qwen_nb.backends import DEFAULT_TIMEOUT, LoopClients, transport_failure
from qwen_nb.normalize import Completion, from_openai
from qwen_nb.requests import ChatRequest, openai_kwargs
from qwen_nb.retry import retry_after_from_headers


def _error_body(exc: Any) -> tuple[Any, dict]:
    """The full JSON body of a failed response (the SDK keeps only its ``error`` part), and its ``error``."""
    body = None
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            body = response.json()
        except Exception:
            body = None
    if body is None:
        body = exc.body
    err = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else body
    return body, err if isinstance(err, dict) else {}


class OpenAICompatBackend:
    """``openai.OpenAI`` / ``openai.AsyncOpenAI`` clients for one profile."""

    api = "openai"

    def __init__(self, profile: Profile, base_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.profile = profile
        self.base_url = base_url
        self._timeout = timeout
        self._headers = {"X-DashScope-WorkSpace": profile.workspace} if profile.workspace else None
        self.client = openai.OpenAI(**self._client_args())
        self._async = LoopClients(lambda: openai.AsyncOpenAI(**self._client_args()))

    def _client_args(self) -> dict[str, Any]:
        return {
            "api_key": self.profile.key,
            "base_url": self.base_url,
            "max_retries": 0,
            "timeout": self._timeout,
            "default_headers": self._headers,
        }

    def _aclient(self) -> Any:
        return self._async.get()

    # -- calls ---------------------------------------------------------------------------------
    def complete(self, req: ChatRequest) -> Completion:
        return from_openai(self.client.chat.completions.create(**openai_kwargs(req, stream=False)))

    def stream(self, req: ChatRequest) -> Any:
        return self.client.chat.completions.create(**openai_kwargs(req, stream=True))

    async def acomplete(self, req: ChatRequest) -> Completion:
        resp = await self._aclient().chat.completions.create(**openai_kwargs(req, stream=False))
        return from_openai(resp)

    async def astream(self, req: ChatRequest) -> Any:
        stream = await self._aclient().chat.completions.create(**openai_kwargs(req, stream=True))
        return _AsyncStream(stream)

    def list_models(self) -> list[str]:
        return [m.id for m in self.client.models.list()]

    # -- errors ----------------------------------------------------------------------------------
    def failure(self, exc: BaseException) -> ServiceFailure | None:
        if isinstance(exc, openai.APITimeoutError):
            return ServiceFailure("timeout", message=str(exc.__cause__ or exc))
        if isinstance(exc, openai.APIConnectionError):
            return ServiceFailure("network", message=str(exc.__cause__ or exc.message))
        if isinstance(exc, openai.APIStatusError):
            body, err = _error_body(exc)
            headers = exc.response.headers
            return ServiceFailure(
                "status",
                status=exc.status_code,
                code=err.get("code") or (body.get("code") if isinstance(body, dict) else None) or err.get("type"),
                message=err.get("message") or (body.get("message") if isinstance(body, dict) else "") or "",
                request_id=(body.get("request_id") if isinstance(body, dict) else None) or exc.request_id,
                body=body,
                retry_after=retry_after_from_headers(headers),
            )
        if isinstance(exc, openai.APIError):  # an error event inside a stream
            body = exc.body if isinstance(exc.body, dict) else {}
            return ServiceFailure(
                "status",
                code=body.get("code") or body.get("type"),
                message=body.get("message") or exc.message,
                request_id=body.get("request_id"),
                body=exc.body,
            )
        return transport_failure(exc)

    def close(self) -> None:
        self.client.close()
        self._async.close()

    async def aclose(self) -> None:
        self.client.close()
        await self._async.aclose()


class _AsyncStream:
    """``openai.AsyncStream`` with the ``aclose()`` name the session uses."""

    __slots__ = ("_stream",)

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __aiter__(self) -> Any:
        return self._stream.__aiter__()

    async def aclose(self) -> None:
        await self._stream.close()
