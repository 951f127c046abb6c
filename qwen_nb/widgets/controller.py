"""``PlaygroundController``: the Playground's chat engine as plain Python (send, stop, clear, streaming), no widgets.

A send runs the call in a background thread, so the kernel stays free; a second thread hands
the text received so far to ``on_update`` at most ``rate`` times a second
(``qwen_nb.coalesce.Coalescer``), plus a final update when the stream ends. ``stop()`` closes
the HTTP stream at once and keeps the partial answer.

The controller knows nothing about ipywidgets: a view (``qwen_nb.widgets.Playground``) wires
its widgets to the callbacks below, and scripts or tests can drive it alone::

    ctl = PlaygroundController(session, on_update=lambda answer, reasoning: print(len(answer)))
    ctl.send("Who are you?", model="qwen-plus", profile="default")
    ctl.wait()
    ctl.answer_text, ctl.history, ctl.last_result

Callbacks (attributes, each optional; set them at construction or later) run in the thread
that caused them: ``send()``, ``stop()`` and ``clear()`` call back in the caller's thread, a
streaming call from its background threads (``on_update`` calls never overlap):

* ``on_start(run)``: a call was accepted; it has not started yet.
* ``on_update(answer, reasoning)``: the text so far changed (coalesced; never twice the same).
* ``on_status(text, kind)``: a one-line status; ``""`` clears it; ``kind`` is "info", "ok" or "warn".
* ``on_error(err)``: an error to show: a send refused for bad input, or a failed call.
* ``on_finish(run)``: a call ended; ``run.outcome`` is "done", "stopped" or "failed".
* ``on_clear()``: the conversation was cleared.
* ``on_step(step)``: a Responses API turn finished a tool step (a ``qwen_nb.media.ResponseStep``;
  from the display thread, before the text it led to).

An exception raised by a callback is logged and never stops the controller (a failed
``on_update`` is retried with the next one).

Every call is a turn (``ctl.turns``, a ``Run`` each, kept until ``new_chat()``): what was
asked, what was sent (``run.messages``, history included), how it ended, and what it was
billed (``run.usage``, ``run.cost``, also after Stop and after an error). ``context(prompt)``
says how many earlier turns and roughly how many tokens the next send carries, ``totals``
what the conversation cost so far per currency, and ``run.action`` names another profile of
the session that can call a model this one was refused (``retry_with_profile``).

``api="responses"`` sends the turn through the Responses API (``Session.respond``) with the
built-in ``tools`` named: tool steps arrive as ``run.steps`` (and ``on_step``), the answer text
streams as in chat, and the finished response's id (``response_id``) is kept so that the next
Responses turn continues from it on the service (``previous_response_id``) instead of resending
the history. That holds while the last kept turn is a finished Responses turn; after a chat turn
or a stopped Responses turn (or with a system prompt on the first turn) the next Responses turn
sends the conversation as input messages, and a chat turn always sends the whole history
(Responses turns included, as their prompt and answer text). New chat forgets the id.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qwen_nb import facts
from qwen_nb._pipeline import CancelToken
from qwen_nb.coalesce import DEFAULT_RATE, Coalescer
from qwen_nb.errors import InputError, ModelNotGrantedError, QwenNbError, StreamInterruptedError
from qwen_nb.normalize import estimate_tokens
from qwen_nb.results import Usage
from qwen_nb.widgets._common import region_label, resolve_session
from qwen_nb.widgets.conversation import Conversation

if TYPE_CHECKING:
    from qwen_nb.media import ResponseResult, ResponseStep
    from qwen_nb.results import ChatResult
    from qwen_nb.session import Session

log = logging.getLogger("qwen_nb")

#: how long ``stop()`` lets the closed stream wind down before finishing the call itself
STOP_GRACE = 0.15
BUSY_MESSAGE = "Still answering: wait for it to finish or press Stop."
#: the ``api`` value of a Responses API turn (the kind's name in ``qwen_nb.facts``)
RESPONSES = "responses"


@dataclass(eq=False)
class Run:
    """One streamed call: what was asked, what arrived, how it ended, and its threads' shared state."""

    prompt: str
    messages: list[dict]
    model: str
    profile: str
    api: str
    params: dict[str, Any]
    coalescer: Coalescer
    #: "done", "stopped" or "failed" once the call ended; None while it runs
    outcome: str | None = None
    result: ChatResult | ResponseResult | None = None
    error: BaseException | None = None
    #: whether the turn was added to the conversation
    kept: bool = False
    #: the region of the profile, and the turn's place in the conversation (1 = first)
    region: str = ""
    index: int = 0
    #: earlier turns sent along with this prompt, and an estimate of the tokens sent
    earlier_turns: int = 0
    context_tokens: int = 0
    #: False when the turn was refused before anything was sent (a model known not granted)
    sent: bool = True
    #: what the call was billed (the partial answer's after Stop; the ledger row's after an error)
    usage: Usage | None = None
    cost: float | None = None
    currency: str | None = None
    #: another profile of the session that can call ``model`` (offered after a not-granted refusal)
    action: str | None = None
    #: Responses turns: the built-in tools sent, the response continued from, the tool steps received
    tools: tuple[str, ...] = ()
    previous_response_id: str | None = None
    steps: list[ResponseStep] = field(default_factory=list)
    wall_started: float = field(default_factory=time.time)
    #: set when the call ended (``outcome`` is set); ``settled`` when its threads have exited too
    done: threading.Event = field(default_factory=threading.Event)
    settled: threading.Event = field(default_factory=threading.Event)
    # measurements (perf_counter seconds)
    deltas: int = 0
    updates: int = 0
    started: float = field(default_factory=time.perf_counter)
    first_delta: float | None = None
    first_update: float | None = None
    ended: float | None = None
    # shared by the caller's, the worker's and the display threads
    cond: threading.Condition = field(default_factory=threading.Condition, repr=False)
    cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    #: stops the call in the pipeline too (no new attempt after Stop)
    token: CancelToken = field(default_factory=CancelToken, repr=False)
    stream: Any = field(default=None, repr=False)  # a ChatStream, or a ResponseStream
    received: bool = False  # the worker left the stream loop
    finalized: bool = False
    update_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    shown_answer: str = field(default="", repr=False)
    shown_reasoning: str = field(default="", repr=False)
    shown_steps: int = field(default=0, repr=False)
    _content: list[str] = field(default_factory=list, repr=False)
    _reasoning: list[str] = field(default_factory=list, repr=False)

    def add(self, content: str | None, reasoning: str | None) -> None:
        """Append a delta's text; call with ``cond`` held."""
        if content:
            self._content.append(content)
        if reasoning:
            self._reasoning.append(reasoning)

    def texts(self) -> tuple[str, str]:
        """(answer, reasoning) so far; call with ``cond`` held."""
        if len(self._content) > 1:
            self._content[:] = ["".join(self._content)]
        if len(self._reasoning) > 1:
            self._reasoning[:] = ["".join(self._reasoning)]
        return (self._content[0] if self._content else "", self._reasoning[0] if self._reasoning else "")

    @property
    def responses(self) -> bool:
        """True for a Responses API turn."""
        return self.api == RESPONSES

    @property
    def input(self) -> str | list[dict]:
        """What a Responses turn sends as ``input``: the prompt alone, or the messages when history is resent."""
        return self.prompt if len(self.messages) == 1 else self.messages

    @property
    def answer(self) -> str:
        """The answer text received so far."""
        with self.cond:
            return self.texts()[0]

    @property
    def reasoning(self) -> str:
        """The thinking text received so far."""
        with self.cond:
            return self.texts()[1]

    def stats(self) -> dict[str, Any]:
        """Deltas, display updates and timings in seconds."""
        first = self.first_delta
        return {
            "deltas": self.deltas,
            "pushes": self.updates,
            "duration": (self.ended or time.perf_counter()) - self.started,
            "first_delta": None if first is None else first - self.started,
            "first_push_after_first_delta": (
                None if first is None or self.first_update is None else self.first_update - first
            ),
            "stream_seconds": None if first is None or self.ended is None else self.ended - first,
        }


def _check_response_call(model: str, region: str, tools: Any) -> list[str]:
    """The built-in tools of a Responses turn, checked with its model and region before anything is sent."""
    names = facts.kind_models(RESPONSES)
    info = facts.kind_model(model)
    if info is None or info.kind != RESPONSES:
        raise InputError(f"{model!r} is not a Responses API model.",
                         fix=f"Pick one in the Model list (Responses API models: {', '.join(names)}).")
    if region not in info.regions:
        raise InputError(f"The Responses API model {info.id!r} is not offered in {region_label(region)}.",
                         fix=f"Use a profile of {', '.join(region_label(r) for r in info.regions)}.")
    if isinstance(tools, str):
        tools = [tools]
    out = list(tools or ())
    for t in out:
        if t not in facts.RESPONSE_TOOLS:
            raise InputError(f"Unknown built-in tool {t!r}.",
                             fix=f"The Responses API's built-in tools: {', '.join(facts.RESPONSE_TOOLS)}.")
    return out


class PlaygroundController:
    """A multi-turn streaming chat over a ``Session``: ``send``, ``stop``, ``clear``, and plain state."""

    def __init__(
        self,
        session: Session | None = None,
        *,
        system: str | None = None,
        rate: float = DEFAULT_RATE,
        on_start: Callable[[Run], Any] | None = None,
        on_update: Callable[[str, str], Any] | None = None,
        on_status: Callable[[str, str], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
        on_finish: Callable[[Run], Any] | None = None,
        on_clear: Callable[[], Any] | None = None,
        on_step: Callable[[ResponseStep], Any] | None = None,
    ) -> None:
        Coalescer(rate)  # a bad rate is an InputError now, not in the first call's thread
        self.session: Session = resolve_session(session)
        self.rate = rate
        self.conversation = Conversation(system=system)
        self.on_start = on_start
        self.on_update = on_update
        self.on_status = on_status
        self.on_error = on_error
        self.on_finish = on_finish
        self.on_clear = on_clear
        self.on_step = on_step
        self.last_result: ChatResult | ResponseResult | None = None
        self.last_error: BaseException | None = None
        #: sends (and clears) refused because a call was still running
        self.refused = 0
        #: ``on_update`` calls made, over every call
        self.updates = 0
        #: the turns of this conversation, oldest first (failed and stopped ones too)
        self.turns: list[Run] = []
        #: what this controller's calls cost, per currency (unknown prices left out; New chat keeps them)
        self.totals: dict[str, float] = {}
        #: tokens billed over this controller's calls (input + output)
        self.total_tokens = 0
        #: calls sent over this controller's life
        self.calls = 0
        #: the id of the last turn's response when it was a finished Responses turn: the next one continues from it
        self.response_id: str | None = None
        self._lock = threading.Lock()
        self._busy = False
        self._run: Run | None = None

    # ------------------------------------------------------------------ plain state
    @property
    def busy(self) -> bool:
        """True while a call is running."""
        return self._busy

    @property
    def run(self) -> Run | None:
        """The current (or last) call; None before the first one and after ``clear()``."""
        return self._run

    @property
    def history(self) -> list[dict]:
        """The conversation so far (message dicts, oldest first)."""
        return self.conversation.messages

    @property
    def answer_text(self) -> str:
        """The current (or last) answer text received."""
        run = self._run
        return "" if run is None else run.answer

    @property
    def reasoning_text(self) -> str:
        """The current (or last) thinking text received."""
        run = self._run
        return "" if run is None else run.reasoning

    @property
    def stats(self) -> dict[str, Any]:
        """Numbers about the current (or last) stream: deltas, pushes (display updates), timings in seconds."""
        run = self._run
        return {} if run is None else run.stats()

    def wait(self, timeout: float | None = 30.0) -> bool:
        """Wait for the current call to end; True if nothing is running any more."""
        run = self._run
        return True if run is None else run.done.wait(timeout)

    def continues(self, api: str = "openai") -> str | None:
        """The response id a next turn on ``api`` continues from (a Responses turn after a finished one), or None."""
        return self.response_id if api == RESPONSES else None

    def context(self, prompt: str = "", api: str = "openai") -> tuple[int, int]:
        """(earlier turns, ~tokens) the next send carries: the system prompt, the kept turns and ``prompt``.

        A Responses turn that continues from the previous response sends only ``prompt``: the
        earlier turns are counted, the tokens are the prompt's.
        """
        conv = self.conversation
        if self.continues(api):
            return conv.turns, estimate_tokens(prompt or "")
        texts = [conv.system or ""] + [str(m.get("content", "")) for m in conv.messages] + [prompt or ""]
        return conv.turns, sum(estimate_tokens(t) for t in texts)

    def context_line(self, prompt: str = "", api: str = "openai") -> str:
        """``3 earlier turns · ~430 tokens will be sent`` (or that the chat is new, or continues on the service)."""
        turns, tokens = self.context(prompt, api)
        if not turns:
            return "New chat: nothing earlier is sent" + (f" · ~{tokens} tokens" if prompt else "")
        earlier = f"{turns} earlier turn{'s' if turns != 1 else ''}"
        if self.continues(api):
            return (f"Continues from the previous response: {earlier} kept by the service, not resent"
                    + (f" · ~{tokens} tokens" if prompt else ""))
        if api == RESPONSES:
            return f"{earlier} · ~{tokens} tokens will be sent as input messages (no previous response to continue)"
        return f"{earlier} · ~{tokens} tokens will be sent"

    def total_line(self) -> str:
        """``Playground total: 0.000123 USD · 1,234 tokens · 3 calls``: what the calls were billed, New chat or not."""
        money = " + ".join(f"{v:.6f} {c}" for c, v in sorted(self.totals.items()))
        calls = self.calls
        return (f"Playground total: {money or 'cost unknown' if self.total_tokens else '0'}"
                f" · {self.total_tokens:,} tokens · {calls} call{'s' if calls != 1 else ''}")

    # ------------------------------------------------------------------ actions
    def send(
        self,
        prompt: str,
        *,
        model: str | None,
        profile: str | None,
        api: str = "openai",
        params: dict[str, Any] | None = None,
        region: str | None = None,
        check_grants: bool = False,
        tools: list[str] | tuple[str, ...] | None = None,
    ) -> bool:
        """Send ``prompt`` as the next turn; False if refused (the status or error callback says why).

        Refused while another answer is running, for an empty prompt, without a model or a
        profile, and when ``region`` (the region the user picked) is not the profile's region.
        With ``check_grants``, a model the profile is known not to be granted (its grants list,
        or a refusal in this session) makes a failed turn at once, with nothing sent.
        ``api="responses"``: a Responses API turn with the built-in ``tools`` named
        (``qwen_nb.facts.RESPONSE_TOOLS``); ``params`` are not sent with it.
        """
        if self._busy:
            self._refuse()
            return False
        try:
            messages = self.conversation.request(prompt)
            if not model and api == RESPONSES:
                offered = sorted({r for m in facts.KIND_MODELS.values() if m.kind == RESPONSES for r in m.regions})
                raise InputError("No Responses API model is selected.",
                                 fix=f"Pick one in the Model list; the Responses API is offered in "
                                 f"{', '.join(region_label(r) for r in offered)}: use a profile of that region.")
            if not model:
                raise InputError("No model is selected.", fix="Pick a model in the Model list.")
            if not profile:
                raise InputError("No profile is selected.", fix="Add a key below (Add a key), then pick it.")
            prof = self.session.get_profile(profile)
            if region is not None and prof.region != region:
                raise InputError(
                    f"Profile {profile!r} is a {region_label(prof.region)} key but "
                    f"{region_label(region)} is selected; keys work only in their own region.",
                    fix="Pick a profile of the selected region, or add a key for it under 'Add a key'.",
                )
            previous = self.continues(api)
            if api == RESPONSES:
                tools = _check_response_call(model, prof.region, tools)
                if previous:
                    messages = messages[-1:]  # the service has the rest
            elif tools:
                raise InputError("Built-in tools are for Responses API turns.",
                                 fix='Use api="responses", or send without tools.')
        except QwenNbError as err:
            self.last_error = err
            self._emit(self.on_error, err)
            return False
        with self._lock:
            if self._busy:
                refused = True
            else:
                refused = False
                self._busy = True
                earlier, tokens = self.context(prompt, api)
                run = Run(
                    prompt=prompt,
                    messages=messages,
                    model=model,
                    profile=prof.name,
                    api=api,
                    params={} if api == RESPONSES else dict(params or {}),
                    tools=tuple(tools or ()),
                    previous_response_id=previous,
                    coalescer=Coalescer(self.rate),
                    region=prof.region,
                    index=len(self.turns) + 1,
                    earlier_turns=earlier,
                    context_tokens=tokens,
                )
                self._run = run
                self.turns.append(run)
        if refused:
            self._refuse()
            return False
        self.last_error = None
        self._emit(self.on_start, run)
        if check_grants and self._known_not_granted(prof, model):
            run.sent = False
            self._finish(run, None, self._not_granted_error(prof, model))
            return True
        via = api
        if run.responses:
            via = "Responses API" + (f", tools: {', '.join(run.tools)}" if run.tools else "")
        self._emit(self.on_status, f"Asking {model} via {run.profile} ({via})…", "info")
        threading.Thread(target=self._work, args=(run,), name="qwen-nb-playground", daemon=True).start()
        return True

    def stop(self) -> bool:
        """Stop the current answer: close its stream at once, keep the partial text; False if none was running.

        When this returns the controller is no longer busy (the call is finished here if its
        thread has not wound down within ``STOP_GRACE`` seconds; its late results are ignored).
        """
        run = self._run
        if run is None or run.done.is_set():
            return False
        with run.cond:
            run.cancel.set()
            run.token.cancel("stopped")  # a retry wait or a reopening ends at once: nothing more is sent
            stream = run.stream
            run.cond.notify_all()
        if stream is not None:
            try:
                stream.close()
            except Exception:  # closing is best effort; the call is finished below either way
                log.debug("qwen-nb: closing a stopped stream failed", exc_info=True)
        if not run.done.wait(STOP_GRACE):
            self._finish(run, None, None)
        return True

    def retry_with_profile(self, run: Run, profile: str | None = None, **kw: Any) -> bool:
        """Send ``run``'s prompt again with ``profile`` (default: ``run.action``), same model, API and parameters."""
        profile = profile or run.action
        kw.setdefault("api", run.api)
        kw.setdefault("params", run.params)
        if run.responses:
            kw.setdefault("tools", run.tools)
        return self.send(run.prompt, model=run.model, profile=profile, **kw)

    def new_chat(self) -> bool:
        """Start a new conversation (``clear()``): nothing earlier is sent with the next prompt."""
        return self.clear()

    def clear(self) -> bool:
        """Forget the conversation and the last answer; refused (False) while an answer is running."""
        if self._busy:
            self._refuse("Stop the current answer before clearing.")
            return False
        self.conversation.clear()
        self.response_id = None  # the next Responses turn starts a new conversation on the service too
        self.turns.clear()  # the totals stay: what was spent was spent
        self._run = None
        self._emit(self.on_clear)
        self._emit(self.on_status, "Conversation cleared.", "info")
        return True

    # ------------------------------------------------------------------ threads
    def _work(self, run: Run) -> None:
        pump = threading.Thread(target=self._pump, args=(run,), name="qwen-nb-display", daemon=True)
        pump.start()
        result: ChatResult | ResponseResult | None = None
        err: BaseException | None = None
        try:
            if run.responses:
                result = self._respond(run)
            else:
                result = self._chat(run)
        except BaseException as exc:  # handed to on_error, never raised into the kernel
            err = exc
        with run.cond:
            run.received = True
            run.cond.notify_all()
        pump.join()
        try:
            self._finish(run, result, err)
        finally:
            run.settled.set()

    def _open(self, run: Run, stream: Any) -> bool:
        """Keep ``stream`` on the run for ``stop()``; False (and closed) if Stop came while it was opening."""
        with run.cond:
            run.stream = stream
            cancelled = run.cancel.is_set()
        if cancelled:  # stopped while the stream was opening: stop() could not close it
            stream.close()
        return not cancelled

    def _respond(self, run: Run) -> ResponseResult | None:
        """A Responses API turn: steps and text as they arrive; the final result (None after Stop)."""
        stream = self.session.respond(run.input, model=run.model, tools=list(run.tools),
                                      previous_response_id=run.previous_response_id, profile=run.profile,
                                      stream=True, cancel=run.token)
        if not self._open(run, stream):
            return None
        result = None
        for event in stream:
            with run.cond:
                if run.cancel.is_set():
                    break
                if event.type == "done":
                    result = event.result
                    continue
                if event.type == "step" and event.step is not None:
                    run.steps.append(event.step)
                elif event.type == "text" and event.text:
                    if run.first_delta is None:
                        run.first_delta = time.perf_counter()
                    run.deltas += 1
                    run.add(event.text, None)
                else:
                    continue
                run.coalescer.mark()
                run.cond.notify_all()
        if run.cancel.is_set():
            return None
        return result if result is not None else stream.result

    def _chat(self, run: Run) -> ChatResult | None:
        """A chat turn: deltas as they arrive; the final result (None after Stop)."""
        stream = self.session.stream_chat(
            run.messages, model=run.model, profile=run.profile, api=run.api, cancel=run.token, **run.params
        )
        if not self._open(run, stream):
            return None
        for delta in stream:
            with run.cond:
                if run.cancel.is_set():
                    break
                if not (delta.content or delta.reasoning):
                    continue
                if run.first_delta is None:
                    run.first_delta = time.perf_counter()
                run.deltas += 1
                run.add(delta.content, delta.reasoning)
                run.coalescer.mark()
                run.cond.notify_all()
        return None if run.cancel.is_set() else stream.result

    def _pump(self, run: Run) -> None:
        """Hand the text to ``on_update``, coalesced, until the stream ends; then a final update."""
        while True:
            with run.cond:
                while True:
                    if run.received or run.cancel.is_set():
                        last = True
                        go = run.coalescer.final()
                        break
                    wait = run.coalescer.delay()
                    if wait is None:
                        run.cond.wait()
                    elif wait > 0:
                        run.cond.wait(wait)
                    elif run.coalescer.try_flush():
                        last, go = False, True
                        break
                answer, reasoning = run.texts() if go else ("", "")
                steps = list(run.steps) if go else []
            if go:
                self._update(run, answer, reasoning, steps)
            if last:
                return

    def _update(self, run: Run, answer: str, reasoning: str, steps: list[ResponseStep] | None = None) -> None:
        with run.update_lock:
            if run.finalized and run.done.is_set():
                return  # a late update of a call already finished (stopped): its final text was shown
            for step in (steps or [])[run.shown_steps:]:  # tool steps first: they come before the text
                self._emit(self.on_step, step)
                run.shown_steps += 1
            if answer == run.shown_answer and reasoning == run.shown_reasoning:
                return
            if not self._emit(self.on_update, answer, reasoning, level=logging.DEBUG):
                return  # shown texts unchanged: the next (or final) update retries
            run.shown_answer, run.shown_reasoning = answer, reasoning
            run.updates += 1
            self.updates += 1
            if run.first_update is None:
                run.first_update = time.perf_counter()

    def _finish(self, run: Run, result: ChatResult | ResponseResult | None, err: BaseException | None) -> None:
        with self._lock:
            finalizing = run.finalized
            run.finalized = True
        if finalizing:  # the other thread is finishing it: wait for that (stop() returns not busy)
            run.done.wait(5.0)
            return
        run.ended = time.perf_counter()
        with run.cond:
            stopped = run.cancel.is_set()
            answer, reasoning = run.texts()
            steps = list(run.steps)
        self._update(run, answer, reasoning, steps)
        if stopped:
            run.outcome = "stopped"
            run.kept = self.conversation.commit(run.prompt, answer, interrupted=True)
            if run.kept:  # the service may not hold this turn: the next Responses turn resends the history
                self.response_id = None
            try:
                run.result = run.stream.result if run.stream is not None else None
            except Exception:
                run.result = None
            self.last_result = run.result
            self._bill(run)
            status = ("Stopped." + (" The partial answer is kept in the history." if run.kept else ""), "warn")
        elif err is not None:
            run.outcome = "failed"
            run.error = self.last_error = err
            if isinstance(err, ModelNotGrantedError):  # the session marks these too; this is for any path
                try:
                    self.session.note_not_granted(run.profile, run.model)
                    others = self.session.profiles_for(run.model, run.region, exclude=run.profile)
                    run.action = others[0].name if others else None
                except Exception:
                    log.debug("qwen-nb: could not mark a model as not granted", exc_info=True)
            self._bill(run)
            self._emit(self.on_error, err)
            status = ("The call failed; the conversation is unchanged." if run.sent
                      else "Nothing was sent; the conversation is unchanged.", "warn")
        else:
            run.outcome = "done"
            run.result = self.last_result = result
            run.kept = self.conversation.commit(run.prompt, answer)
            rid = getattr(result, "id", None) if run.responses else None
            self.response_id = rid if isinstance(rid, str) and rid else None
            self._bill(run)
            status = ("", "info")
        self._emit(self.on_status, *status)
        self._emit(self.on_finish, run)
        with self._lock:
            self._busy = False
        run.done.set()

    # ------------------------------------------------------------------ helpers
    def _bill(self, run: Run) -> None:
        """Set what ``run`` was billed and add it to the totals: its result's usage, else its ledger row's."""
        usage, cost, currency = None, None, None
        if run.result is not None:
            usage, cost, currency = run.result.usage, run.result.cost, run.result.currency
        elif not run.sent:
            usage = Usage()
        else:
            usage, cost, currency = self._ledger_row(run)
        if currency is None:
            from qwen_nb.prices import region_currency

            currency = region_currency(run.region)
        run.usage, run.cost, run.currency = usage, cost, currency
        self.calls += 1 if run.sent else 0
        if usage is not None:
            self.total_tokens += usage.input_tokens + usage.output_tokens
        if cost is not None:
            self.totals[currency] = self.totals.get(currency, 0.0) + cost
        elif currency not in self.totals and usage is not None and not (usage.input_tokens or usage.output_tokens):
            self.totals.setdefault(currency, 0.0)

    def _ledger_row(self, run: Run) -> tuple[Usage | None, float | None, str | None]:
        """The usage ledger's row of a failed call (tokens billed, cost), if it can be found."""
        err = run.error
        try:
            rows = [r for r in self.session.ledger.records(since=run.wall_started - 1)
                    if r.profile == run.profile and r.model == run.model]
        except Exception:
            rows = []
        rid = getattr(err, "request_id", None)
        row = next((r for r in reversed(rows) if rid and r.request_id == rid), rows[-1] if rows else None)
        if row is not None:
            usage = Usage(row.input_tokens or 0, row.output_tokens or 0, row.reasoning_tokens or 0,
                          (row.input_tokens or 0) + (row.output_tokens or 0))
            return usage, row.cost, row.currency
        if isinstance(err, StreamInterruptedError):
            return None, None, None  # some text arrived: billed, but not known here
        return Usage(), None, None  # refused before any answer: nothing billed

    def _known_not_granted(self, prof: Any, model: str) -> bool:
        if model in self.session.not_granted(prof.name):
            return True
        return prof.models is not None and model not in prof.models

    def _not_granted_error(self, prof: Any, model: str) -> ModelNotGrantedError:
        where = "its grants list" if prof.models is not None and model not in prof.models else "a refusal earlier"
        fix = (f"Pick a model granted to the workspace of {prof.name!r}, or use a profile that can call {model!r}. "
               f"To grant it: Model Studio console > the workspace > model permissions, or "
               f"q.grant([{model!r}], profile={prof.name!r}).")
        return ModelNotGrantedError(
            f"Profile {prof.name!r} may not call {model!r} (known from {where}); nothing was sent.",
            fix=fix, profile=prof.name, region=prof.region, model=model,
        )

    def _refuse(self, message: str = BUSY_MESSAGE) -> None:
        self.refused += 1
        self._emit(self.on_status, message, "warn")

    @staticmethod
    def _emit(callback: Callable[..., Any] | None, *args: Any, level: int = logging.WARNING) -> bool:
        """Call a view callback; False if it raised (logged, never propagated into the engine)."""
        if callback is None:
            return True
        try:
            callback(*args)
        except Exception:
            log.log(level, "qwen-nb: a playground callback (%s) failed", getattr(callback, "__name__", callback),
                    exc_info=True)
            return False
        return True
