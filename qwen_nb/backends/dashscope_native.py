"""The native endpoint (``/api/v1``) through the ``dashscope`` 2.x SDK (``dashscope.Client``).

Configured per client: ``api_key``, ``base_url``, ``workspace`` and ``region`` are
passed explicitly (never the module globals ``dashscope.api_key`` /
``dashscope.base_http_api_url``), so profiles in several regions coexist in one
kernel. Vision calls go to the multimodal endpoint (``client.multimodal.chat``).
"""

from __future__ import annotations

from typing import Any

import dashscope
from dashscope.v2 import errors as ds_errors

from qwen_nb._guidance import ServiceFailure
from qwen_nb._profiles import Profile
from qwen_nb.backends import DEFAULT_TIMEOUT, LoopClients, transport_failure
from qwen_nb.normalize import Completion, from_native
from qwen_nb.requests import ChatRequest, native_kwargs
from qwen_nb.retry import retry_after_from_headers


class DashScopeNativeBackend:
    """``dashscope.Client`` / ``dashscope.AsyncClient`` (protocol ``native``) for one profile."""

    api = "dashscope"

    def __init__(self, profile: Profile, base_url: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.profile = profile
        self.base_url = base_url
        self._timeout = timeout
        self.client = dashscope.Client(**self._client_args())
        self._async = LoopClients(lambda: dashscope.AsyncClient(**self._client_args()))

    def _client_args(self) -> dict[str, Any]:
        return {
            "api_key": self.profile.key,
            "base_url": self.base_url,
            # "" (not None) so the SDK does not pick DASHSCOPE_WORKSPACE up from the environment
            "workspace": self.profile.workspace or "",
            "region": self.profile.region,
            "protocol": "native",
            "timeout": self._timeout,
            "max_retries": 0,
        }

    def _aclient(self) -> Any:
        return self._async.get()

    @staticmethod
    def _resource(client: Any, req: ChatRequest) -> Any:
        return client.multimodal.chat if req.vision else client.chat.completions

    # -- calls ---------------------------------------------------------------------------------
    def complete(self, req: ChatRequest) -> Completion:
        return from_native(self._resource(self.client, req).create(**native_kwargs(req, stream=False)))

    def stream(self, req: ChatRequest) -> Any:
        return self._resource(self.client, req).create(**native_kwargs(req, stream=True))

    async def acomplete(self, req: ChatRequest) -> Completion:
        resp = await self._resource(self._aclient(), req).create(**native_kwargs(req, stream=False))
        return from_native(resp)

    async def astream(self, req: ChatRequest) -> Any:
        return await self._resource(self._aclient(), req).create(**native_kwargs(req, stream=True))

    def list_models(self) -> list[str]:
        names: list[str] = []
        page = 1
        while True:
            listing = self.client.models.list(page_no=page, page_size=100)
            names += [m.model for m in listing.models if m.model]
            if not listing.models or len(names) >= listing.total_count:
                return names
            page += 1

    # -- errors ----------------------------------------------------------------------------------
    def failure(self, exc: BaseException) -> ServiceFailure | None:
        if isinstance(exc, ds_errors.APITimeoutError):
            return ServiceFailure("timeout", message=exc.message)
        if isinstance(exc, ds_errors.APIConnectionError):
            return ServiceFailure("network", message=exc.message)
        if isinstance(exc, ds_errors.DashScopeError):
            status = exc.status_code
            return ServiceFailure(
                "status",
                # 200 means a business error inside a 200 answer or a stream: the code decides
                status=None if status == 200 else status,
                code=exc.code,
                message=exc.message,
                request_id=exc.request_id,
                body=exc.body,
                retry_after=retry_after_from_headers(exc.headers),
            )
        return transport_failure(exc)

    def close(self) -> None:
        self.client.close()
        self._async.close()

    async def aclose(self) -> None:
        self.client.close()
        await self._async.aclose()


def failure_from_response(resp: Any) -> ServiceFailure | None:
    """A ``ServiceFailure`` from a dashscope 1.x response object (``Generation.call`` and friends
    return errors instead of raising), or None if the response is a success."""
    status = getattr(resp, "status_code", None)
    code = getattr(resp, "code", None) or None
    if status in (None, 200) and not code:
        return None
    headers = getattr(resp, "headers", None) or {}
    return ServiceFailure(
        "status",
        status=None if status == 200 else status,
        code=code,
        message=getattr(resp, "message", "") or "",
        request_id=getattr(resp, "request_id", None) or None,
        body={"code": code, "message": getattr(resp, "message", ""), "request_id": getattr(resp, "request_id", None)},
        retry_after=retry_after_from_headers(headers),
    )
