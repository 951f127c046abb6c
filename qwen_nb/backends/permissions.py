"""A workspace's model grants over the service's permissions API: list them, grant, revoke (plain HTTP with httpx).

``GET {workspace host}/api/v1/models/permissions?authorization_scope=AUTHORIZED`` lists the
models a workspace may call (paginated: ``output.permissions[]``, ``output.total``);
``POST`` the same path with ``{"models": [{"model", "inference"}], "access_all_entities":
"KEEP"}`` changes them and answers ``{"success": true, "output": null}``. Neither SDK has a
call for it, so it is sent with ``httpx`` (which both SDKs bring). The grants must be changed
with a key allowed to (the service's console says: the Alibaba Cloud account); a refusal comes
back as the service's error, translated like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qwen_nb import facts
from qwen_nb._guidance import ServiceFailure
from qwen_nb.backends import DEFAULT_TIMEOUT
from qwen_nb.retry import retry_after_from_headers

#: the service's largest page
PAGE_SIZE = 200
#: the most models one POST may name
MAX_MODELS = 20


class PermissionsFailure(Exception):
    """The permissions API answered with an error; ``failure`` describes it for the guidance."""

    def __init__(self, failure: ServiceFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def _failure(response: Any) -> ServiceFailure:
    try:
        body = response.json()
    except ValueError:
        body = {"message": response.text[:500]}
    err = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else body
    err = err if isinstance(err, dict) else {}
    return ServiceFailure("status", status=response.status_code, code=err.get("code") or err.get("type"),
                          message=err.get("message") or "", request_id=(body or {}).get("request_id")
                          if isinstance(body, dict) else None, body=body,
                          retry_after=retry_after_from_headers(response.headers))


def _client(native_base: str, key: str, timeout: float) -> Any:
    import httpx

    return httpx.Client(base_url=native_base, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)


def _send(native_base: str, key: str, method: str, params: dict[str, Any] | None = None,
          body: dict[str, Any] | None = None, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    import httpx

    with _client(native_base, key, timeout) as client:
        try:
            response = client.request(method, facts.PERMISSIONS_PATH, params=params, json=body)
        except httpx.TimeoutException as exc:
            raise PermissionsFailure(ServiceFailure("timeout", message=f"{type(exc).__name__}: {exc}")) from None
        except httpx.HTTPError as exc:
            raise PermissionsFailure(ServiceFailure("network", message=f"{type(exc).__name__}: {exc}")) from None
    if response.status_code >= 400:
        raise PermissionsFailure(_failure(response))
    data = response.json()
    if not isinstance(data, dict) or data.get("success") is False or data.get("code"):
        d = data if isinstance(data, dict) else {}
        raise PermissionsFailure(ServiceFailure("status", status=response.status_code, code=d.get("code"),
                                                message=d.get("message") or "", request_id=d.get("request_id"),
                                                body=data))
    return data


def granted_models(native_base: str, key: str, *, timeout: float = DEFAULT_TIMEOUT) -> list[str]:
    """The models the workspace of ``native_base`` may call for inference, every page read."""
    names: list[str] = []
    page = 1
    while True:
        data = _send(native_base, key, "GET", params={"authorization_scope": "AUTHORIZED", "action": "INFERENCE",
                                                      "page_no": page, "page_size": PAGE_SIZE}, timeout=timeout)
        output = data.get("output") or {}
        rows = output.get("permissions") or []
        for row in rows:
            allowed = (row.get("permissions") or {}).get("inference", True)
            if allowed and isinstance(row.get("model"), str):
                names.append(row["model"])
        total = output.get("total")
        if not rows or (isinstance(total, int) and page * PAGE_SIZE >= total):
            return names
        page += 1


def set_inference(native_base: str, key: str, models: Sequence[str], allow: bool, *,
                  timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Grant (``allow=True``) or revoke inference on ``models`` (at most 20 per request); the service's reply."""
    body = {"models": [{"model": m, "inference": allow} for m in models], "access_all_entities": "KEEP"}
    return _send(native_base, key, "POST", body=body, timeout=timeout)
