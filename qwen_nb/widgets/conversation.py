"""A multi-turn conversation as plain data: the messages the playground sends and keeps.

Pure logic, no widgets and no I/O. A turn is committed only when it finished (or was
stopped with some text); a failed call leaves the history exactly as it was.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from qwen_nb.errors import InputError


@dataclass
class Conversation:
    """The chat history (OpenAI-style message dicts) and an optional system prompt."""

    messages: list[dict] = field(default_factory=list)
    system: str | None = None

    def request(self, prompt: str) -> list[dict]:
        """The messages to send for a new ``prompt``: system, history, then the new user message.

        Raises ``InputError`` for an empty prompt. Does not change the history.
        """
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError("The prompt is empty.", fix="Type a question in the prompt box, then press Send.")
        out: list[dict] = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        out.extend(copy.deepcopy(self.messages))
        out.append({"role": "user", "content": prompt})
        return out

    def commit(self, prompt: str, answer: str, *, interrupted: bool = False) -> bool:
        """Add a finished turn. A stopped turn is kept only if some answer text arrived.

        Returns True if the turn was added.
        """
        if interrupted and not answer.strip():
            return False
        self.messages.append({"role": "user", "content": prompt})
        self.messages.append({"role": "assistant", "content": answer})
        return True

    def clear(self) -> None:
        """Forget every turn (the system prompt stays)."""
        self.messages.clear()

    @property
    def turns(self) -> int:
        """Number of user turns kept."""
        return sum(1 for m in self.messages if m.get("role") == "user")

    def markdown(self) -> str:
        """The history as Markdown, one block per message."""
        if not self.messages:
            return "*(no previous turns)*"
        parts = []
        for m in self.messages:
            who = "**You**" if m.get("role") == "user" else "**Qwen**"
            parts.append(f"{who}\n\n{m.get('content', '')}")
        return "\n\n---\n\n".join(parts)
