"""``ChatResult``, ``ChatDelta`` and ``Usage``: one result type, whichever SDK made the call."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Usage:
    """Token counts of one call, as the service bills them."""

    input_tokens: int = 0
    output_tokens: int = 0
    #: thinking tokens (part of ``output_tokens``)
    reasoning_tokens: int = 0
    total_tokens: int = 0
    #: input tokens served from the context cache (part of ``input_tokens``)
    cached_tokens: int = 0
    #: input tokens written to an explicit cache (part of ``input_tokens``)
    cache_creation_tokens: int = 0
    #: "ephemeral" when the call used an explicit cache marker, "" otherwise (implicit cache)
    cache_type: str = ""

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.total_tokens + other.total_tokens,
            self.cached_tokens + other.cached_tokens,
            self.cache_creation_tokens + other.cache_creation_tokens,
            self.cache_type or other.cache_type,
        )

    def line(self) -> str:
        """``12 in · 34 out (10 thinking) · 46 total``."""
        thinking = f" ({self.reasoning_tokens} thinking)" if self.reasoning_tokens else ""
        cache = ""
        if self.cached_tokens or self.cache_creation_tokens:
            parts = [f"{n} {w}" for n, w in ((self.cached_tokens, "cached"),
                                              (self.cache_creation_tokens, "cache written")) if n]
            cache = f" ({', '.join(parts)})"
        return f"{self.input_tokens} in{cache} · {self.output_tokens} out{thinking} · {self.total_tokens} total"


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asked for."""

    id: str
    name: str
    #: the arguments as the model wrote them (a JSON string)
    arguments: str


@dataclass(frozen=True)
class ChatDelta:
    """One piece of a streamed answer: content and reasoning text kept apart."""

    content: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None


@dataclass
class ChatResult:
    """A finished call: the answer, its usage and where it came from."""

    text: str
    model: str
    api: str
    profile: str
    region: str
    reasoning: str = ""
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    request_id: str | None = None
    #: seconds from sending the request to the last byte
    latency: float = 0.0
    #: seconds to the first content or reasoning token (streams only)
    time_to_first_token: float | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    #: estimated cost in ``currency``; None when the price is unknown
    cost: float | None = None
    currency: str | None = None
    workspace: str | None = None
    attempts: int = 1
    raw: Any = field(default=None, repr=False, compare=False)
    #: answered by the local emulator (canned text, no cost), not by Model Studio
    emulator: bool = False

    def __str__(self) -> str:
        return self.text

    def json(self) -> Any:
        """The answer parsed as JSON (for ``response_format={"type": "json_object"}``)."""
        import json

        return json.loads(self.text)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data (JSON-ready; the SDK's raw objects are left out)."""
        from dataclasses import asdict

        data = asdict(self.__class__(**{**self.__dict__, "raw": None}))
        del data["raw"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatResult:
        """A result from ``to_dict()``'s data."""
        data = dict(data)
        data["usage"] = Usage(**data.get("usage", {}))
        data["tool_calls"] = tuple(ToolCall(**t) for t in data.get("tool_calls", ()))
        return cls(**data)

    def __repr__(self) -> str:
        # what a saved notebook keeps: the answer and where it came from, not the timings or the
        # request id (they change every run; they stay available as attributes)
        fields = ["text", "reasoning", "model", "api", "profile", "region", "workspace", "finish_reason",
                  "usage", "tool_calls", "cost", "currency"]
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}" for name in fields
            if getattr(self, name) not in ("", (), None) or name in ("text", "usage")
        )
        return f"ChatResult({shown})"

    def _cost_text(self) -> str:
        if not self.currency:
            return ""
        return f" · ≈{self.cost:.6f} {self.currency}" if self.cost is not None else " · cost unknown"

    def summary(self) -> str:
        """One line that is the same on every run: model, profile, region, api, tokens, cost."""
        return (f"{self.model} · {self.profile} ({self.region}) · {self.api} · {self.usage.line()}{self._cost_text()}"
                f"{self._where()}")

    def _where(self) -> str:
        return " · (emulator)" if self.emulator else ""

    def footer(self) -> str:
        """One line: model, profile, region, api, tokens, latency, cost (the live usage line)."""
        return (
            f"{self.model} · {self.profile} ({self.region}) · {self.api} · "
            f"{self.usage.line()} · {self.latency * 1000:.0f} ms{self._cost_text()}{self._where()}"
        )

    def _repr_markdown_(self) -> str:
        parts = []
        if self.reasoning:
            quoted = "\n".join("> " + line for line in self.reasoning.splitlines())
            parts.append(f"<details><summary>Thinking</summary>\n\n{quoted}\n\n</details>\n")
        parts.append(self.text or "*(no text)*")
        for call in self.tool_calls:
            parts.append(f"\n`{call.name}({html.escape(call.arguments)})`")
        parts.append(f"\n\n<small>{html.escape(self.summary())}</small>")
        return "\n".join(parts)
