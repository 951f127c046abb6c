"""Result types of the calls beyond chat: embeddings, rerank, images, speech, transcripts and responses.

One type per kind, each with the same provenance fields as ``ChatResult`` (model, api, profile,
region, workspace, usage, cost) and a notebook display: a ranked table, an inline image, an audio
player, tool steps. What a saved notebook keeps (``_repr_*_``) holds no timings, request ids or
keys, so a re-run gives the same output. ``numpy`` is imported only when an array is asked for.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_nb.results import Usage


@dataclass
class _Provenance:
    """Where a result came from and what it cost (the fields every kind shares)."""

    model: str = ""
    api: str = ""
    profile: str = ""
    region: str = ""
    workspace: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost: float | None = None
    currency: str | None = None
    #: the service's request ids (one per request sent)
    request_ids: tuple[str, ...] = field(default=(), repr=False)
    latency: float = field(default=0.0, repr=False)
    attempts: int = field(default=1, repr=False)

    def summary(self) -> str:
        """One line that is the same on every run: model, profile, region, api, usage, cost."""
        cost = ""
        if self.currency:
            cost = f" · ≈{self.cost:.6f} {self.currency}" if self.cost is not None else " · cost unknown"
        return f"{self.model} · {self.profile} ({self.region}) · {self.api} · {self.usage.line()}{cost}"

    def _small(self) -> str:
        return f"<small>{html.escape(self.summary())}</small>"


# ---------------------------------------------------------------------------------------------- embeddings


@dataclass(repr=False)
class EmbeddingResult(_Provenance):
    """Vectors for ``texts``, in their order: ``.array`` (numpy, one row per text), usage and cost."""

    texts: tuple[str, ...] = ()
    vectors: list[list[float]] = field(default_factory=list)
    dimensions: int = 0
    #: requests sent (texts go in batches of the model's documented rows per request)
    batches: int = 0

    @property
    def array(self) -> Any:
        """The vectors as a ``numpy.ndarray`` of shape (len(texts), dimensions), float32."""
        import numpy as np

        cached = self.__dict__.get("_array")
        if cached is None:
            cached = np.asarray(self.vectors, dtype=np.float32).reshape(len(self.vectors), self.dimensions)
            self.__dict__["_array"] = cached
        return cached

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        arr = self.array
        return arr if dtype is None else arr.astype(dtype)

    def __len__(self) -> int:
        return len(self.vectors)

    def __iter__(self) -> Iterator[list[float]]:
        return iter(self.vectors)

    def __getitem__(self, i: int) -> Any:
        return self.array[i]

    @property
    def shape(self) -> tuple[int, int]:
        """(texts, dimensions)."""
        return (len(self.vectors), self.dimensions)

    def similarity(self, other: Any) -> Any:
        """Cosine similarity of every row with ``other`` (a vector, or an ``EmbeddingResult`` of one text):
        a numpy array of ``len(self)`` scores."""
        import numpy as np

        q = np.asarray(other.array[0] if isinstance(other, EmbeddingResult) else other, dtype=np.float32).ravel()
        rows = self.array
        norms = np.linalg.norm(rows, axis=1) * (np.linalg.norm(q) or 1.0)
        return (rows @ q) / np.where(norms == 0, 1.0, norms)

    def most_similar(self, other: Any, k: int = 3) -> list[tuple[int, float, str]]:
        """The ``k`` rows closest to ``other``: (index, score, text), best first."""
        scores = self.similarity(other)
        order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))[:k]
        return [(i, round(float(scores[i]), 4), self.texts[i] if i < len(self.texts) else "") for i in order]

    def __repr__(self) -> str:
        return (f"EmbeddingResult(texts={len(self.vectors)}, dimensions={self.dimensions}, model={self.model!r}, "
                f"api={self.api!r}, profile={self.profile!r}, region={self.region!r}, usage={self.usage!r}, "
                f"cost={self.cost!r}, currency={self.currency!r})")

    def _repr_html_(self) -> str:
        rows = []
        for text, vec in list(zip(self.texts, self.vectors, strict=False))[:5]:
            head = ", ".join(f"{x:+.3f}" for x in vec[:4])
            rows.append(f"<tr><td>{html.escape(_clip(text, 60))}</td><td><code>[{head}, …]</code></td></tr>")
        more = f"<tr><td colspan=2>… {len(self.vectors) - 5} more</td></tr>" if len(self.vectors) > 5 else ""
        return (f"<b>{len(self.vectors)} embeddings × {self.dimensions}</b> "
                f"({self.batches} request{'s' if self.batches != 1 else ''})"
                f"<table><tr><th>text</th><th>vector</th></tr>{''.join(rows)}{more}</table>{self._small()}")


# ---------------------------------------------------------------------------------------------- rerank


@dataclass(frozen=True)
class RankedDocument:
    """One scored document: its position in the input, its relevance score, its text."""

    index: int
    score: float
    document: str


@dataclass(repr=False)
class RerankResult(_Provenance):
    """Documents ranked by relevance to ``query``, best first."""

    query: str = ""
    ranked: tuple[RankedDocument, ...] = ()

    def __len__(self) -> int:
        return len(self.ranked)

    def __iter__(self) -> Iterator[RankedDocument]:
        return iter(self.ranked)

    def __getitem__(self, i: int) -> RankedDocument:
        return self.ranked[i]

    @property
    def documents(self) -> list[str]:
        """The documents' texts, best first."""
        return [r.document for r in self.ranked]

    def __repr__(self) -> str:
        top = ", ".join(f"({r.index}, {r.score:.4f})" for r in self.ranked[:5])
        return f"RerankResult(query={self.query!r}, ranked=[{top}{', …' if len(self.ranked) > 5 else ''}], " \
               f"model={self.model!r}, usage={self.usage!r}, cost={self.cost!r}, currency={self.currency!r})"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{rank}</td><td>{r.score:.4f}</td><td>{r.index}</td><td>{html.escape(_clip(r.document, 120))}"
            "</td></tr>" for rank, r in enumerate(self.ranked, 1))
        return (f"<b>Ranked for:</b> {html.escape(self.query)}<table><tr><th>rank</th><th>score</th><th>input #</th>"
                f"<th>document</th></tr>{rows}</table>{self._small()}")


# ---------------------------------------------------------------------------------------------- images


@dataclass(frozen=True)
class SavedImage:
    """One generated image, saved at once: its local path, the service's (expiring) URL, its bytes."""

    path: Path
    url: str = field(default="", repr=False)
    data: bytes = field(default=b"", repr=False, compare=False)

    def _repr_html_(self) -> str:
        return _img(self.data, str(self.path.name))


@dataclass(repr=False)
class ImageResult(_Provenance):
    """Images made from ``prompt``, saved in ``folder`` as soon as they arrived (the service's URLs expire)."""

    prompt: str = ""
    size: str = ""
    images: tuple[SavedImage, ...] = ()
    #: "sync" (one request) or "async" (the task API)
    mode: str = ""
    task_id: str | None = field(default=None, repr=False)

    @property
    def paths(self) -> list[Path]:
        """Where the images were saved."""
        return [im.path for im in self.images]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> SavedImage:
        return self.images[i]

    def __repr__(self) -> str:
        return (f"ImageResult(prompt={self.prompt!r}, images={[str(p) for p in self.paths]!r}, size={self.size!r}, "
                f"mode={self.mode!r}, model={self.model!r}, profile={self.profile!r}, region={self.region!r})")

    def _repr_html_(self) -> str:
        pics = "".join(f"<figure style='display:inline-block;margin:4px'>{_img(im.data, im.path.name)}"
                       f"<figcaption><small>{html.escape(im.path.name)}</small></figcaption></figure>"
                       for im in self.images)
        return f"<div>{pics}</div><small>{html.escape(self.prompt)}</small><br>{self._small()}"


def _img(data: bytes, alt: str) -> str:
    if not data:
        return f"<i>{html.escape(alt)}</i>"
    kind = "png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "jpeg"
    b64 = base64.b64encode(data).decode("ascii")
    return f"<img src='data:image/{kind};base64,{b64}' alt='{html.escape(alt)}' style='max-width:320px'/>"


# ---------------------------------------------------------------------------------------------- speech


@dataclass(repr=False)
class SpeechResult(_Provenance):
    """Speech for ``text``: the audio bytes (saved at ``path``), shown as an audio player."""

    text: str = ""
    voice: str = ""
    audio: bytes = field(default=b"", repr=False)
    #: "wav", "mp3" ...
    format: str = "wav"
    path: Path | None = None
    url: str = field(default="", repr=False)
    characters: int = 0

    @property
    def duration(self) -> float | None:
        """Seconds of audio (WAV only; None otherwise)."""
        return wav_duration(self.audio)

    def save(self, path: str | Path) -> Path:
        """Write the audio to ``path``; returns it."""
        p = Path(path).expanduser()
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(self.audio)
        return p

    def __repr__(self) -> str:
        return (f"SpeechResult(text={_clip(self.text, 60)!r}, voice={self.voice!r}, format={self.format!r}, "
                f"path={str(self.path) if self.path else None!r}, model={self.model!r}, profile={self.profile!r})")

    def _repr_html_(self) -> str:
        mime = {"wav": "audio/wav", "mp3": "audio/mpeg", "pcm": "audio/L16", "opus": "audio/ogg"}.get(
            self.format, "audio/wav")
        b64 = base64.b64encode(self.audio).decode("ascii")
        return (f"<audio controls src='data:{mime};base64,{b64}'></audio><br>"
                f"<small>{html.escape(self.voice)}: “{html.escape(_clip(self.text, 120))}”</small><br>{self._small()}")


def wav_duration(data: bytes) -> float | None:
    """Seconds of a PCM WAV (None if ``data`` is not one)."""
    import struct

    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    rate = width = channels = 0
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        if tag == b"fmt ":
            channels, rate = struct.unpack("<HI", data[pos + 10:pos + 16])
            width = struct.unpack("<H", data[pos + 22:pos + 24])[0] // 8
        elif tag == b"data" and rate and width and channels:
            return round(size / (rate * width * channels), 3)
        pos += 8 + size + (size & 1)
    return None


@dataclass(repr=False)
class TranscriptResult(_Provenance):
    """What was said in an audio file."""

    text: str = ""
    language: str | None = None
    source: str = ""

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return (f"TranscriptResult(text={self.text!r}, language={self.language!r}, model={self.model!r}, "
                f"api={self.api!r}, profile={self.profile!r}, usage={self.usage!r})")

    def _repr_markdown_(self) -> str:
        return f"> {self.text or '*(no speech)*'}\n\n{self._small()}"


# ---------------------------------------------------------------------------------------------- responses


@dataclass(frozen=True)
class ResponseStep:
    """One step of a Responses API answer: a built-in tool call (web search, code) or a reasoning summary."""

    #: the output item's type: "web_search_call", "code_interpreter_call", "web_extractor_call", "reasoning",
    #: "function_call" ...
    type: str
    #: what the step did: the search query, the code, the function name and arguments
    detail: str = ""
    status: str = ""
    #: what it produced (code output, sources), as text
    output: str = ""
    id: str = field(default="", repr=False)

    @property
    def title(self) -> str:
        """A short label: "web search", "code interpreter" ..."""
        return self.type.removesuffix("_call").replace("_", " ")


@dataclass(repr=False)
class ResponseResult(_Provenance):
    """A Responses API answer: its text, the tool steps that led to it, and its id for the next turn."""

    id: str = ""
    text: str = ""
    steps: tuple[ResponseStep, ...] = ()
    previous_response_id: str | None = None
    status: str = ""

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return (f"ResponseResult(text={self.text!r}, steps={[s.title for s in self.steps]!r}, model={self.model!r}, "
                f"profile={self.profile!r}, usage={self.usage!r}, cost={self.cost!r}, currency={self.currency!r})")

    def _repr_markdown_(self) -> str:
        parts = []
        for i, s in enumerate(self.steps, 1):
            out = f"\n\n  → {_clip(s.output, 200)}" if s.output else ""
            parts.append(f"{i}. **{s.title}** `{_clip(s.detail, 120)}` ({s.status}){out}")
        steps = "\n".join(parts)
        return (f"{steps}\n\n" if steps else "") + (self.text or "*(no text)*") + f"\n\n{self._small()}"


@dataclass(frozen=True)
class ResponseEvent:
    """One piece of a streamed response: a tool step, some text, or the finished result."""

    #: "step", "text" or "done"
    type: str
    step: ResponseStep | None = None
    text: str = ""
    result: ResponseResult | None = None


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1] + "…"


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity of two vectors (pure Python; 0 for a zero vector)."""
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


__all__ = ["EmbeddingResult", "ImageResult", "RankedDocument", "RerankResult", "ResponseEvent", "ResponseResult",
           "ResponseStep", "SavedImage", "SpeechResult", "TranscriptResult", "cosine", "wav_duration"]
