"""Deterministic reply text: canned answers, topic-based replies, reasoning, tool calls, JSON.

Everything here is pure: the same request always gives the same reply, token
counts come from the real Qwen tokenizer shipped offline with the ``dashscope``
SDK (with a rough fallback if it cannot be loaded), and the reply is cut into
token pieces once so streaming only has to send precomputed chunks.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import random
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------
# tokenizer


class _FallbackTokenizer:
    """Used only when the dashscope tokenizer cannot be loaded: words, spaces and symbols."""

    _pat = re.compile(r" ?[A-Za-z]+| ?\d| ?[^\sA-Za-z\d]|\s+")

    def encode(self, text: str) -> list[str]:
        return self._pat.findall(text)

    def decode(self, ids: list[Any]) -> str:
        return "".join(ids)


_tokenizer: Any = None
_tokenizer_lock = threading.Lock()
#: "qwen" when the real Qwen vocabulary is in use, "fallback" otherwise
tokenizer_kind = "unloaded"

# The Qwen pre-tokenisation pattern and special-token ids (the vocabulary file itself
# ships with the dashscope SDK as resources/qwen.tiktoken).
_QWEN_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+"""
    r"""|\s+(?!\S)|\s+"""
)
_QWEN_SPECIAL_START = 151643
_QWEN_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>") + tuple(f"<|extra_{i}|>" for i in range(205))


class QwenTokenizer:
    """The Qwen BPE tokenizer, read from the vocabulary file the dashscope SDK ships.

    Built with ``tiktoken`` directly so loading it does not import the dashscope package
    (which may race with imports in the caller's thread); counts equal
    ``dashscope.get_tokenizer("qwen-plus")``'s.
    """

    def __init__(self, vocab_file: str | os.PathLike[str]) -> None:
        import tiktoken

        ranks: dict[bytes, int] = {}
        with open(vocab_file, "rb") as f:
            for line in f.read().splitlines():
                if line:
                    token, rank = line.split()
                    ranks[base64.b64decode(token)] = int(rank)
        specials = {t: _QWEN_SPECIAL_START + i for i, t in enumerate(_QWEN_SPECIALS)}
        self._enc = tiktoken.Encoding("qwen-nb-emulator", pat_str=_QWEN_PATTERN, mergeable_ranks=ranks,
                                      special_tokens=specials)

    def encode(self, text: str) -> list[int]:
        """Token ids (special tokens such as ``<|im_start|>`` allowed)."""
        return self._enc.encode(unicodedata.normalize("NFC", text), allowed_special="all")

    def decode(self, ids: list[int]) -> str:
        """Text of token ids (invalid UTF-8 shows as U+FFFD)."""
        return self._enc.decode(ids, errors="replace")


def _vocab_file() -> Path | None:
    spec = importlib.util.find_spec("dashscope")
    for root in (spec.submodule_search_locations or []) if spec else []:
        p = Path(root) / "resources" / "qwen.tiktoken"
        if p.is_file():
            return p
    return None


def get_tokenizer() -> Any:
    """The Qwen tokenizer, loaded once and cached (a crude fallback if the vocabulary is missing)."""
    global _tokenizer, tokenizer_kind
    if _tokenizer is not None:
        return _tokenizer
    with _tokenizer_lock:
        if _tokenizer is None:
            try:
                vocab = _vocab_file()
                if vocab is None:
                    raise FileNotFoundError("qwen.tiktoken")
                tok: Any = QwenTokenizer(vocab)
                tokenizer_kind = "qwen"
            except Exception:  # pragma: no cover - only without dashscope/tiktoken
                tok = _FallbackTokenizer()
                tokenizer_kind = "fallback"
            _tokenizer = tok
    return _tokenizer


def warm_tokenizer() -> threading.Thread | None:
    """Load the tokenizer in a background thread (so starting the emulator stays fast)."""
    if _tokenizer is not None:
        return None
    try:
        import tiktoken  # noqa: F401  (imported here, in the caller's thread, not in the worker)
    except ImportError:  # pragma: no cover
        pass
    t = threading.Thread(target=get_tokenizer, name="qwen-nb-emulator-tokenizer", daemon=True)
    t.start()
    return t


def encode(text: str) -> list[Any]:
    """Token ids of ``text``."""
    return get_tokenizer().encode(text)


def count_tokens(text: str) -> int:
    """Number of tokens of ``text``."""
    return len(encode(text)) if text else 0


def token_pieces(text: str) -> list[str]:
    """``text`` cut at token boundaries; pieces join back to ``text`` exactly.

    A token that ends inside a multi-byte character is merged with the next one,
    so a piece is always valid text.
    """
    if not text:
        return []
    tok = get_tokenizer()
    ids = tok.encode(text)
    pieces: list[str] = []
    pending: list[Any] = []
    for i in ids:
        pending.append(i)
        s = tok.decode(pending)
        if s.endswith("\ufffd") and len(pending) < 8:
            continue
        pieces.append(s)
        pending = []
    if pending:
        pieces.append(tok.decode(pending))
    if "".join(pieces) != text:  # paranoia: never stream something else than the reply
        return [text]
    return pieces


IMAGE_TOKENS = 256  # fixed cost the emulator charges per input image


def render_prompt(messages: list[dict[str, Any]]) -> str:
    """The chat-template text the prompt token count is taken from.

    ``<|im_start|>{role}\\n{text}<|im_end|>\\n`` per message, then the opening of the
    assistant turn. Images are counted separately (``IMAGE_TOKENS`` each).
    """
    parts = []
    for m in messages:
        text = m.get("text") or ""
        if m.get("tool_calls"):
            text += json.dumps(m["tool_calls"], ensure_ascii=False, sort_keys=True)
        parts.append(f"<|im_start|>{m['role']}\n{text}<|im_end|>\n")
    parts.append("<|im_start|>assistant\n")
    return "".join(parts)


def prompt_tokens(messages: list[dict[str, Any]], tools: list[Any] | None = None) -> int:
    """Input tokens of a normalised message list (see ``render_prompt``), tools and images included."""
    n = count_tokens(render_prompt(messages))
    if tools:
        n += count_tokens(json.dumps(tools, ensure_ascii=False, sort_keys=True))
    n += IMAGE_TOKENS * sum(len(m.get("images") or ()) for m in messages)
    return n


# ---------------------------------------------------------------------------
# reply text

CANNED: dict[str, str] = {
    "who are you": (
        "I am Qwen, a large language model developed by Alibaba Cloud. I can answer questions, "
        "write and summarise text, translate, reason step by step and help with code. "
        "How can I help you today?"
    ),
    "what is your name": "I am Qwen, a large language model developed by Alibaba Cloud.",
    "say hello": "Hello! Nice to meet you. How can I help you today?",
    "hello": "Hello! How can I help you today?",
    "hi": "Hi there! What would you like to talk about?",
    "what is 2+2": "2 + 2 = 4.",
    "what is 2 + 2": "2 + 2 = 4.",
    "write a haiku about the sea": (
        "Grey waves fold and break,\nsalt wind carries gulls away,\nthe tide keeps its time."
    ),
    "tell me a joke": (
        "Why did the neural network go to therapy? It had too many unresolved layers."
    ),
    "what is the capital of france": "The capital of France is Paris.",
    "translate hello into french": "\"Hello\" in French is \"Bonjour\".",
    "count from 1 to 10": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10",
    "is 17 a prime number": "Yes. 17 is a prime number: its only divisors are 1 and 17.",
    "is 17 prime": "Yes. 17 is a prime number: its only divisors are 1 and 17.",
}

#: the start of every reply the emulator makes up (a prompt it has no canned answer for): a reader
#: must never take it for a model's answer
MADE_UP = "(emulator: canned text, not an answer to your question) "

_STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be because been before being below between
    both but by can could did do does doing down during each explain few for from further give had has have
    having he her here hers him his how i if in into is it its itself just let me more most my no nor not now
    of off on once only or other our out over own please same she should so some such tell than that the their
    them then there these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours write short brief describe summarise summarize
    json answer reply question using use give list make show want need know works work get like think good
    best way ways many much thing things really something anything advice learning learn help tips idea ideas
    example examples information details overview introduction guide""".split()
)

_OPENERS = (
    "Here is a short overview of {t}.",
    "Good question about {t}.",
    "Let me explain {t} briefly.",
    "{T} is a topic worth looking at from a few angles.",
    "Sure, let's talk about {t}.",
)
_BODY = (
    "{T} is easiest to understand through its purpose, its main parts and how those parts interact.",
    "A practical way to approach {t} is to start from a concrete example and generalise from there.",
    "When you work with {t}, check your assumptions early and measure the result instead of guessing.",
    "{T} and {u} are closely related, so looking at both usually gives a clearer picture.",
    "Common pitfalls with {t} are skipping the basics and optimising too early.",
    "Small experiments and the official documentation are the fastest way to build intuition about {t}.",
    "Most of the value of {t} comes from a few core ideas that are applied consistently.",
    "It also helps to compare {t} with the alternatives, since each involves different trade-offs.",
    "In practice, teams that succeed with {t} keep things simple and iterate in small steps.",
    "The details of {u} matter less than having a clear goal and a way to check progress.",
)
_CLOSERS = (
    "If you tell me more about your goal, I can go into more detail.",
    "I hope this helps; feel free to ask a follow-up question.",
    "Let me know which part you would like to explore further.",
)
_THINK = (
    "The user is asking about {t}. Let me work out what they actually need.",
    "First, I should recall the key facts about {t} and check that they are accurate.",
    "They might also care about {u}, so I could mention how it relates.",
    "A clear structure would help: a one-line summary, then a few concrete points.",
    "I should avoid jargon where possible and keep the answer reasonably short.",
    "Are there common misconceptions about {t}? It may be worth pointing one out.",
    "Let me double-check the reasoning before writing the final answer.",
)


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text).strip().lower()
    text = re.sub(r"\s+", " ", text)
    return text.rstrip(" ?!.。？！")


def _rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def topic_words(text: str, limit: int = 3) -> list[str]:
    """The prompt's content words, in order, without stop words."""
    words = re.findall(r"[^\W\d_][\w'+-]*", text)
    out: list[str] = []
    for w in words:
        lw = w.lower().strip("'-")
        if len(lw) < 3 and not re.search(r"[^\x00-\x7f]", lw):
            continue
        if lw in _STOPWORDS or lw in (o.lower() for o in out):
            continue
        out.append(w.strip("'-"))
        if len(out) >= limit:
            break
    return out


def _topic_phrase(words: list[str]) -> tuple[str, str]:
    if not words:
        return "your question", "the context around it"
    t = words[0]
    u = words[1] if len(words) > 1 else "the surrounding context"
    return t, u


def _fill(template: str, t: str, u: str) -> str:
    return template.format(t=t, u=u, T=t[:1].upper() + t[1:])


def generic_reply(prompt: str, key: Any) -> str:
    """A plausible answer built from the prompt's topic words, seeded by ``key``."""
    rng = _rng("reply", key)
    t, u = _topic_phrase(topic_words(prompt))
    body = rng.sample(_BODY, 4)
    sentences = [rng.choice(_OPENERS)] + body + [rng.choice(_CLOSERS)]
    return MADE_UP + " ".join(_fill(s, t, u) for s in sentences)


def lengthen(text: str, prompt: str, key: Any, min_tokens: int) -> str:
    """``text`` followed by deterministic paragraphs on the prompt's topic, until it has ``min_tokens`` tokens."""
    n = count_tokens(text)
    if n >= min_tokens:
        return text
    rng = _rng("long", key)
    t, u = _topic_phrase(topic_words(prompt))
    parts = [text]
    while n < min_tokens:
        paragraph = " ".join(_fill(sentence, t, u) for sentence in rng.sample(_BODY, len(_BODY)))
        parts.append(paragraph)
        n += count_tokens("\n\n" + paragraph)
        if n >= min_tokens:  # token counts of pieces need not add up exactly: check the whole
            n = count_tokens("\n\n".join(parts))
    return "\n\n".join(parts)


def reasoning_text(prompt: str, key: Any) -> str:
    """Deterministic chain-of-thought text for thinking models."""
    rng = _rng("think", key)
    t, u = _topic_phrase(topic_words(prompt))
    first, rest = _THINK[0], list(_THINK[1:])
    picked = [first] + rng.sample(rest, 4)
    return "\n".join(_fill(s, t, u) for s in picked) + "\nOK, I will write the answer now."


def _image_name(url: str) -> str:
    """How a reply names an image: its file name, or "inline PNG image" for a data URL."""
    if url.startswith("data:"):
        kind = url[5:].split(";", 1)[0].split("/")[-1].upper()
        return f"inline {kind} image" if kind else "inline image"
    return re.sub(r"[?#].*$", "", url).rstrip("/").rsplit("/", 1)[-1][:40] or "image"


def image_reply(prompt: str, images: list[str], key: Any) -> str:
    """A description-like answer for vision requests."""
    rng = _rng("image", key)
    names = [_image_name(u) for u in images]
    subjects = ("a street scene with people and shops", "a dog sitting on a beach at sunset",
                "a chart with several coloured bars", "a desk with a laptop and a cup of coffee",
                "a mountain landscape under a clear sky", "a page of printed text")
    what = rng.choice(subjects)
    lead = MADE_UP + f"The image ({names[0]}) shows {what}." if len(images) == 1 else (
        MADE_UP + f"I looked at {len(images)} images ({', '.join(names)}). The first one shows {what}.")
    words = topic_words(prompt)
    tail = (f" Regarding your question about {' '.join(words[:2])}: the visible details are consistent with that, "
            "but a higher-resolution image would let me be more precise.") if words else (
            " The composition is balanced and the main subject is clearly in focus.")
    return lead + tail


# ---------------------------------------------------------------------------
# tools and JSON


def _schema_value(name: str, schema: dict[str, Any], prompt: str, rng: random.Random) -> Any:
    typ = schema.get("type")
    if isinstance(typ, list):
        typ = next((t for t in typ if t != "null"), "string")
    if "enum" in schema and schema["enum"]:
        for option in schema["enum"]:
            if str(option).lower() in prompt.lower():
                return option
        return schema["enum"][0]
    if typ == "string" or typ is None:
        lname = name.lower()
        if any(k in lname for k in ("city", "location", "place", "country", "destination", "address")):
            caps = re.findall(r"\b[A-Z][a-z]+(?:\s[A-Z][a-z]+)?", prompt)
            caps = [c for c in caps if c.split()[0].lower() not in _STOPWORDS]
            return caps[-1] if caps else "Singapore"
        if any(k in lname for k in ("query", "question", "text", "prompt", "input", "content", "message")):
            return prompt.strip()
        if "date" in lname:
            return "2025-01-01"
        if "unit" in lname:
            return "celsius"
        words = topic_words(prompt, 2)
        return " ".join(words) if words else name
    if typ in ("integer", "number"):
        nums = re.findall(r"-?\d+(?:\.\d+)?", prompt)
        if nums:
            v = float(nums[0])
            return int(v) if typ == "integer" else v
        return 1 if typ == "integer" else 1.0
    if typ == "boolean":
        return True
    if typ == "array":
        item = schema.get("items") or {"type": "string"}
        return [_schema_value(name, item, prompt, rng)]
    if typ == "object":
        return fill_schema(schema, prompt, rng)
    return None


def fill_schema(schema: dict[str, Any], prompt: str, rng: random.Random | None = None) -> dict[str, Any]:
    """A JSON object matching ``schema`` (an object schema), filled from the prompt where obvious."""
    rng = rng or _rng("schema", schema, prompt)
    props = schema.get("properties") or {}
    required = schema.get("required")
    names = list(props) if required is None else [n for n in props if n in required] or list(props)[:1]
    return {n: _schema_value(n, props[n] if isinstance(props[n], dict) else {}, prompt, rng) for n in names}


def choose_tool(tools: list[dict[str, Any]], prompt: str, tool_choice: Any = None) -> dict[str, Any] | None:
    """The tool whose name/description best matches the prompt (or the one ``tool_choice`` forces)."""
    fns = [t.get("function") or {} for t in tools if isinstance(t, dict)]
    fns = [f for f in fns if f.get("name")]
    if not fns or tool_choice == "none":
        return None
    if isinstance(tool_choice, dict):
        wanted = (tool_choice.get("function") or {}).get("name")
        for f in fns:
            if f["name"] == wanted:
                return f
    words = {w.lower() for w in re.findall(r"[A-Za-z]{3,}", prompt)} - _STOPWORDS

    def score(f: dict[str, Any]) -> int:
        text = f["name"].replace("_", " ") + " " + str(f.get("description", ""))
        vocab = {w.lower() for w in re.findall(r"[A-Za-z]{3,}", text)}
        stems = {w[:5] for w in vocab}
        return sum(2 if w in vocab else 1 if w[:5] in stems else 0 for w in words)

    best = max(fns, key=score)
    if score(best) == 0 and tool_choice not in ("required",):
        return None
    return best


_KEYS_ASKED = re.compile(
    r"\b(?:keys?|fields?|properties)\b\s*(?:named|called)?\s*:?\s*"
    r"((?:[`'\"]?[A-Za-z_][\w-]*[`'\"]?)(?:\s*(?:,|\band\b|\bor\b)\s*(?:[`'\"]?[A-Za-z_][\w-]*[`'\"]?))*)",
    re.IGNORECASE,
)
_JSON_WORDS = frozenset({"json", "object", "return", "give", "reply", "answer", "respond", "format", "output"})
_NUMERIC_KEYS = ("count", "number", "total", "population", "year", "age", "price", "amount", "score", "size")


def requested_keys(prompt: str) -> list[str]:
    """Keys a prompt asks a JSON object to have ("with keys name, capital and population")."""
    m = _KEYS_ASKED.search(prompt)
    if not m:
        return []
    parts = re.split(r"\s*(?:,|\band\b|\bor\b)\s*", m.group(1))
    keys = [p.strip("`'\" ") for p in parts]
    return list(dict.fromkeys(k for k in keys if k))


def _json_value(name: str, topic: str, rng: Any) -> Any:
    """A deterministic, plausible value for a requested JSON key."""
    if any(part in _NUMERIC_KEYS for part in re.split(r"[_\W]+", name.lower())):
        return rng.randint(1, 9999)
    return f"{name.replace('_', ' ')} of {topic}"


def json_reply(prompt: str, key: Any, schema: dict[str, Any] | None = None) -> str:
    """A JSON object answering the prompt (schema-shaped if a JSON schema is given)."""
    if schema and isinstance(schema.get("properties"), dict):
        return json.dumps(fill_schema(schema, prompt, _rng("json", key)), ensure_ascii=False)
    words = topic_words(prompt, 4)
    t, _ = _topic_phrase(words)
    asked = requested_keys(prompt)
    if asked:
        rest = _KEYS_ASKED.sub(" ", prompt)
        subject = [w for w in topic_words(rest, 8) if w.lower() not in _JSON_WORDS]
        topic = subject[-1] if subject else "the question"
        rng = _rng("json", key)
        return json.dumps({k: _json_value(k, topic, rng) for k in asked}, ensure_ascii=False)
    obj = {
        "topic": t,
        "summary": _fill(_rng("json", key).choice(_BODY), t, words[-1] if words else "the context"),
        "keywords": words,
    }
    return json.dumps(obj, ensure_ascii=False)


# ---------------------------------------------------------------------------
# the reply


@dataclass
class Reply:
    """A finished reply, already cut into token pieces for streaming."""

    content: str
    reasoning: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str = "stop"
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    image_tokens: int = 0
    content_pieces: list[str] = field(default_factory=list)
    reasoning_pieces: list[str] = field(default_factory=list)


def _cut_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def _truncate(pieces: list[str], limit: int | None) -> tuple[list[str], bool]:
    if limit is None or len(pieces) <= limit:
        return pieces, False
    return pieces[:limit], True


def build_reply(
    *,
    model: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    tool_choice: Any = None,
    thinking: bool = False,
    thinking_budget: int | None = None,
    max_tokens: int | None = None,
    stop: list[str] | None = None,
    seed: int | None = None,
    response_format: dict[str, Any] | None = None,
    min_tokens: int | None = None,
    input_tokens: int | None = None,
) -> Reply:
    """The deterministic reply to a normalised request.

    ``messages`` items are ``{"role", "text", "images", "tool_calls"?, "name"?}``. ``min_tokens``
    lengthens a text answer (not a tool call or JSON) to at least that many tokens, before
    ``stop`` and ``max_tokens`` apply. ``input_tokens``, when the caller already counted the
    prompt (``prompt_tokens(messages, tools)``), saves counting it again.
    """
    key = [model, seed, [(m["role"], m.get("text"), m.get("images")) for m in messages]]
    last_user = next((m for m in reversed(messages) if m["role"] == "user"), None)
    prompt = (last_user or {}).get("text") or ""
    images = list((last_user or {}).get("images") or ())
    tool_results = []
    for m in reversed(messages):
        if m["role"] == "tool":
            tool_results.append(m)
        elif m["role"] in ("user", "assistant") and not m.get("tool_calls"):
            break
        elif m["role"] == "assistant":
            continue
    tool_results.reverse()

    reasoning = ""
    if thinking:
        reasoning_pieces = token_pieces(reasoning_text(prompt, key))
        reasoning_pieces, _ = _truncate(reasoning_pieces, thinking_budget)
        reasoning = "".join(reasoning_pieces)
    else:
        reasoning_pieces = []

    calls: list[dict[str, Any]] = []
    fmt = (response_format or {}).get("type")
    chosen = choose_tool(tools, prompt, tool_choice) if tools and not tool_results else None
    if chosen is not None:
        schema = chosen.get("parameters")
        params: dict[str, Any] = schema if isinstance(schema, dict) else {}
        args = json.dumps(fill_schema(params, prompt), ensure_ascii=False)
        call_id = "call_" + hashlib.sha256(json.dumps([key, chosen["name"]]).encode()).hexdigest()[:24]
        calls.append({"id": call_id, "type": "function", "function": {"name": chosen["name"], "arguments": args}})
        text = ""
    elif tool_results:
        used = "; ".join(str(m.get("text") or "")[:300] for m in tool_results)
        name = tool_results[-1].get("name") or "the tool"
        text = (f"According to {name}, the result is: {used}. "
                f"Based on this, here is the answer to \"{prompt[:120]}\": the information above is current "
                "and should answer your question; let me know if you need anything else.")
    elif fmt in ("json_object", "json_schema"):
        schema = ((response_format or {}).get("json_schema") or {}).get("schema") if fmt == "json_schema" else None
        text = json_reply(prompt, key, schema)
    elif images:
        text = image_reply(prompt, images, key)
    elif _normalise(prompt) in CANNED:
        text = CANNED[_normalise(prompt)]
    else:
        text = generic_reply(prompt, key)
    if min_tokens and not calls and fmt not in ("json_object", "json_schema"):
        text = lengthen(text, prompt, key, min_tokens)
    text = unicodedata.normalize("NFC", text)

    finish = "tool_calls" if calls else "stop"
    text, _ = _cut_stop(text, stop or [])
    pieces = token_pieces(text)
    pieces, truncated = _truncate(pieces, max_tokens)
    if truncated:
        finish = "length"
    content = "".join(pieces)

    reasoning_tokens = count_tokens(reasoning)
    out_tokens = count_tokens(content) + reasoning_tokens
    for c in calls:
        out_tokens += count_tokens(c["function"]["name"] + c["function"]["arguments"])
    n_images = sum(len(m.get("images") or ()) for m in messages)
    return Reply(
        content=content,
        reasoning=reasoning,
        tool_calls=calls,
        finish_reason=finish,
        input_tokens=prompt_tokens(messages, tools) if input_tokens is None else input_tokens,
        output_tokens=out_tokens,
        reasoning_tokens=reasoning_tokens,
        image_tokens=IMAGE_TOKENS * n_images,
        content_pieces=pieces,
        reasoning_pieces=reasoning_pieces,
    )
