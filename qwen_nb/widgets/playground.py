"""``Playground``: pick a profile and model, chat with streaming, see thinking, usage, errors and code.

The answer is streamed into an ``Output`` widget as ``text/markdown`` (rendered by the stock
output area of JupyterLab 4, Notebook 7 and VS Code; no custom frontend). The call runs in
a background thread so the kernel stays free; a second thread pushes the text to the
widget at most ~20 times a second (``qwen_nb.coalesce.Coalescer``) plus a final push.

Everything a button does is a method: ``send(prompt)``, ``stop()``, ``clear()``; the state
is plain Python: ``history``, ``answer_text``, ``reasoning_text``, ``busy``,
``last_result``, ``last_error``, ``updates_sent``, and ``wait(timeout)``.
"""

from __future__ import annotations

import html
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import ipywidgets as widgets

from qwen_nb.coalesce import DEFAULT_RATE, Coalescer
from qwen_nb.errors import InputError, ModelNotGrantedError
from qwen_nb.widgets._common import error_html, esc, note_html, pre_html, resolve_session, scrub
from qwen_nb.widgets.conversation import Conversation
from qwen_nb.widgets.keys import KeyEntry
from qwen_nb.widgets.params import ParamsBox
from qwen_nb.widgets.pickers import ApiToggle, ModelPicker, ProfilePicker, RegionPicker, region_label

#: how long ``stop()`` waits for the call to wind down before letting it finish on its own
STOP_GRACE = 0.15
CODE_LANGUAGES = ("python", "curl", "node", "java", "go", "csharp", "php")


def _markdown_output(text: str) -> tuple[dict, ...]:
    """An ``Output.outputs`` value showing ``text`` as Markdown."""
    if not text:
        return ()
    return ({"output_type": "display_data", "data": {"text/markdown": text, "text/plain": text}, "metadata": {}},)


@dataclass
class _Run:
    """One streamed call: what was asked, what arrived, and its threads' shared state."""

    prompt: str
    messages: list[dict]
    model: str
    profile: str
    api: str
    params: dict
    coalescer: Coalescer
    cond: threading.Condition = field(default_factory=threading.Condition)
    cancel: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    stream: Any = None
    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    push_lock: threading.Lock = field(default_factory=threading.Lock)
    shown_answer: str = ""
    shown_reasoning: str = ""
    received: bool = False  # the worker left the stream loop
    finalized: bool = False
    deltas: int = 0
    pushes: int = 0
    started: float = field(default_factory=time.perf_counter)
    first_delta: float | None = None
    first_push: float | None = None
    ended: float | None = None

    def texts(self) -> tuple[str, str]:
        """(answer, reasoning) so far; call with ``cond`` held."""
        if len(self.content) > 1:
            self.content[:] = ["".join(self.content)]
        if len(self.reasoning) > 1:
            self.reasoning[:] = ["".join(self.reasoning)]
        return (self.content[0] if self.content else "", self.reasoning[0] if self.reasoning else "")


class Playground(widgets.VBox):
    """Pickers, parameters, a prompt box and a streamed, multi-turn chat with Send / Stop / Clear."""

    def __init__(
        self,
        session: Any = None,
        *,
        model: str | None = None,
        profile: str | None = None,
        api: str | None = None,
        system: str | None = None,
        rate: float = DEFAULT_RATE,
        **kwargs: Any,
    ) -> None:
        self.session = resolve_session(session)
        self.rate = rate
        self.conversation = Conversation(system=system)
        self.last_result: Any = None
        self.last_error: BaseException | None = None
        #: widget value pushes made while streaming (answer and thinking text)
        self.updates_sent = 0
        #: sends refused because a call was still running
        self.refused = 0
        self._lock = threading.Lock()
        self._busy = False
        self._run: _Run | None = None

        # pickers
        self.region = RegionPicker(self.session)
        self.profile = ProfilePicker(self.session, region=self.region, value=profile)
        self.model = ModelPicker(self.session, profile=self.profile, value=model)
        self.api = ApiToggle(self.session, value=api)
        self.params = ParamsBox(self.session, model=self.model)
        self.key_entry = KeyEntry(self.session, region=self.region.value)
        self.key_entry.on_added(self._on_key_added)

        # prompt and buttons
        self.prompt = widgets.Textarea(placeholder="Ask Qwen…", layout=widgets.Layout(width="100%", height="6em"))
        self.send_button = widgets.Button(description="Send", button_style="primary", icon="paper-plane")
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.clear_button = widgets.Button(description="Clear", icon="eraser", tooltip="forget the conversation")
        self.code_toggle = widgets.ToggleButton(description="Show code", icon="code", value=False)
        self.code_language = widgets.Dropdown(options=CODE_LANGUAGES, value="python", layout={"width": "8em"})
        self.send_button.on_click(lambda _b: self.send())
        self.stop_button.on_click(lambda _b: self.stop())
        self.clear_button.on_click(lambda _b: self.clear())

        # output area
        self.status = widgets.HTML()
        self.error = widgets.HTML()
        self.thinking = widgets.HTML()
        self.thinking_box = widgets.Accordion(children=[self.thinking], titles=("Thinking",), selected_index=None)
        self.thinking_box.layout.display = "none"
        self.answer = widgets.Output(layout={"border": "1px solid var(--jp-border-color2, #ddd)", "padding": "4px"})
        self.usage = widgets.HTML()
        self.history_view = widgets.Output()
        self.history_box = widgets.Accordion(children=[self.history_view], titles=("History (0 turns)",))
        self.history_box.selected_index = None
        self.code = widgets.Output()
        self.code_row = widgets.HBox([self.code_language])
        self.code_box = widgets.VBox([self.code_row, self.code])
        self.code_box.layout.display = "none"
        self.settings = widgets.Accordion(
            children=[self.params, self.key_entry], titles=("Parameters", "Add a key"), selected_index=None
        )

        for w in (self.model, self.profile, self.api, self.code_language):
            w.observe(self._choices_changed, names="value")
        self.region.observe(self._region_changed, names="value")
        for w in (self.params.temperature, self.params.max_tokens, self.params.thinking,
                  self.params.thinking_budget, self.params.seed):
            w.observe(self._choices_changed, names="value")
        self.code_toggle.observe(self._toggle_code, names="value")

        super().__init__(
            children=[
                widgets.HBox([self.region, self.profile]),
                widgets.HBox([self.model, self.api]),
                self.settings,
                self.prompt,
                widgets.HBox([self.send_button, self.stop_button, self.clear_button, self.code_toggle]),
                self.status,
                self.error,
                self.thinking_box,
                self.answer,
                self.usage,
                self.history_box,
                self.code_box,
            ],
            **kwargs,
        )

    # ------------------------------------------------------------------ plain state
    @property
    def busy(self) -> bool:
        """True while a call is streaming."""
        return self._busy

    @property
    def history(self) -> list[dict]:
        """The conversation so far (message dicts, oldest first)."""
        return self.conversation.messages

    @property
    def answer_text(self) -> str:
        """The current (or last) answer text received."""
        run = self._run
        if run is None:
            return ""
        with run.cond:
            return run.texts()[0]

    @property
    def reasoning_text(self) -> str:
        """The current (or last) thinking text received."""
        run = self._run
        if run is None:
            return ""
        with run.cond:
            return run.texts()[1]

    @property
    def stats(self) -> dict[str, Any]:
        """Numbers about the current (or last) stream: deltas, pushes, timings in seconds."""
        run = self._run
        if run is None:
            return {}
        first = run.first_delta
        return {
            "deltas": run.deltas,
            "pushes": run.pushes,
            "duration": (run.ended or time.perf_counter()) - run.started,
            "first_delta": None if first is None else first - run.started,
            "first_push_after_first_delta": (
                None if first is None or run.first_push is None else run.first_push - first
            ),
            "stream_seconds": None if first is None or run.ended is None else run.ended - first,
        }

    def wait(self, timeout: float | None = 30.0) -> bool:
        """Wait for the current call to finish; True if nothing is running any more."""
        run = self._run
        return True if run is None else run.done.wait(timeout)

    # ------------------------------------------------------------------ actions
    def send(self, prompt: str | None = None, buffers: Any = None) -> bool:
        """Send ``prompt`` (default: the prompt box) as the next turn; False if refused.

        Refused politely while another answer is streaming, and for an empty prompt.
        (A dict is a widget custom message, as for any ipywidgets ``Widget.send``.)
        """
        if isinstance(prompt, dict):
            super().send(prompt, buffers)
            return False
        if self._busy:
            self._refuse()
            return False
        text = self.prompt.value if prompt is None else prompt
        try:
            messages = self.conversation.request(text)
            model = self.model.value
            if not model:
                raise InputError("No model is selected.", fix="Pick a model in the Model list.")
            profile = self.profile.value
            if not profile:
                raise InputError("No profile is selected.", fix="Add a key below (Add a key), then pick it.")
            prof = self.session.get_profile(profile)
            if prof.region != self.region.value:
                raise InputError(
                    f"Profile {profile!r} is a {region_label(prof.region)} key but "
                    f"{region_label(self.region.value)} is selected; keys work only in their own region.",
                    fix="Pick a profile of the selected region, or add a key for it under 'Add a key'.",
                )
            params = self.params.params()
        except InputError as err:
            self._show_error(err)
            return False
        with self._lock:
            if self._busy:
                self._refuse()
                return False
            self._busy = True
            run = _Run(
                prompt=text,
                messages=messages,
                model=model,
                profile=profile,
                api=self.api.value,
                params=params,
                coalescer=Coalescer(self.rate),
            )
            self._run = run
        self.last_error = None
        self.error.value = ""
        self.usage.value = ""
        self.answer.outputs = ()
        self.thinking.value = ""
        self.thinking_box.layout.display = "none"
        if prompt is None:
            self.prompt.value = ""
        self.send_button.disabled = True
        self.stop_button.disabled = False
        self.status.value = note_html(f"Asking {model} via {profile} ({run.api})…")
        if self.code_toggle.value:
            self._render_code(run.prompt)
        threading.Thread(target=self._work, args=(run,), name="qwen-nb-playground", daemon=True).start()
        return True

    def stop(self) -> bool:
        """Stop the current answer (the partial text stays); False if nothing was running."""
        run = self._run
        if run is None or run.done.is_set():
            return False
        run.cancel.set()
        with run.cond:
            stream = run.stream
            run.cond.notify_all()
        if stream is not None:
            try:
                stream.close()
            except Exception:  # closing is best effort; the run is finished below either way
                pass
        if not run.done.wait(STOP_GRACE):
            self._finish(run, None, None)  # the worker ends on its own; its late results are ignored
        return True

    def clear(self) -> None:
        """Forget the conversation and clear the answer (refused while streaming)."""
        if self._busy:
            self._refuse("Stop the current answer before clearing.")
            return
        self.conversation.clear()
        self.answer.outputs = ()
        self.thinking.value = ""
        self.thinking_box.layout.display = "none"
        self.usage.value = ""
        self.error.value = ""
        self.status.value = note_html("Conversation cleared.")
        self._render_history()

    # ------------------------------------------------------------------ threads
    def _work(self, run: _Run) -> None:
        pump = threading.Thread(target=self._pump, args=(run,), name="qwen-nb-display", daemon=True)
        pump.start()
        result = err = None
        try:
            stream = self.session.stream_chat(
                run.messages, model=run.model, profile=run.profile, api=run.api, **run.params
            )
            with run.cond:
                run.stream = stream
            if run.cancel.is_set():
                stream.close()
            else:
                for delta in stream:
                    if run.cancel.is_set():
                        break
                    if not (delta.content or delta.reasoning):
                        continue
                    with run.cond:
                        if run.first_delta is None:
                            run.first_delta = time.perf_counter()
                        run.deltas += 1
                        if delta.content:
                            run.content.append(delta.content)
                        if delta.reasoning:
                            run.reasoning.append(delta.reasoning)
                        run.coalescer.mark()
                        run.cond.notify_all()
                if not run.cancel.is_set():
                    result = stream.result
        except BaseException as exc:  # shown in the error panel, never raised into the kernel
            err = exc
        with run.cond:
            run.received = True
            run.cond.notify_all()
        pump.join()
        self._finish(run, result, err)

    def _pump(self, run: _Run) -> None:
        """Push the text to the widgets, coalesced, until the stream ends; then a final push."""
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
            if go:
                self._push(run, answer, reasoning)
            if last:
                return

    def _push(self, run: _Run, answer: str, reasoning: str) -> None:
        with run.push_lock:
            try:
                if reasoning and reasoning != run.shown_reasoning:
                    if self.thinking_box.layout.display == "none":
                        self.thinking_box.layout.display = None
                    self.thinking.value = pre_html(reasoning)
                    run.shown_reasoning = reasoning
                    self.updates_sent += 1
                    run.pushes += 1
                if answer and answer != run.shown_answer:
                    self.answer.outputs = _markdown_output(scrub(answer))
                    run.shown_answer = answer
                    self.updates_sent += 1
                    run.pushes += 1
                if run.first_push is None and run.pushes:
                    run.first_push = time.perf_counter()
            except Exception:  # a display hiccup must not lose the answer; the final push retries
                pass

    def _finish(self, run: _Run, result: Any, err: BaseException | None) -> None:
        with self._lock:
            if run.finalized:
                return
            run.finalized = True
        run.ended = time.perf_counter()
        stopped = run.cancel.is_set()
        with run.cond:
            answer, reasoning = run.texts()
        if stopped:
            self._push(run, answer, reasoning)
            kept = self.conversation.commit(run.prompt, answer, interrupted=True)
            self.status.value = note_html(
                "Stopped." + (" The partial answer is kept in the history." if kept else ""), "warn"
            )
            try:
                self.last_result = run.stream.result if run.stream is not None else None
            except Exception:
                self.last_result = None
        elif err is not None:
            self.last_error = err
            self._show_error(err)
            if isinstance(err, ModelNotGrantedError):
                self.session.note_not_granted(run.profile, run.model)
                self.model.relabel()
            if not self.prompt.value:
                self.prompt.value = run.prompt  # nothing is lost: the prompt comes back to the box
            self.status.value = note_html("The call failed; the conversation is unchanged.", "warn")
        else:
            self.last_result = result
            self.conversation.commit(run.prompt, answer)
            self.usage.value = f"<small>{esc(result.footer()) if result is not None else ''}</small>"
            self.status.value = ""
        self._render_history()
        self.send_button.disabled = False
        self.stop_button.disabled = True
        self._busy = False
        run.done.set()

    # ------------------------------------------------------------------ helpers
    def _refuse(self, message: str = "Still answering: wait for it to finish or press Stop.") -> None:
        self.refused += 1
        self.status.value = note_html(message, "warn")

    def _show_error(self, err: BaseException) -> None:
        self.last_error = err
        self.error.value = error_html(err)

    def _render_history(self) -> None:
        n = self.conversation.turns
        self.history_box.set_title(0, f"History ({n} turn{'s' if n != 1 else ''})")
        self.history_view.outputs = _markdown_output(scrub(self.conversation.markdown()))

    def _on_key_added(self, profile: Any) -> None:
        self.profile.refresh(select=profile.name)
        if self.profile.value == profile.name:
            self.model.refresh(force=True)

    def _region_changed(self, _change: Any) -> None:
        note = self.profile.note
        self.status.value = note_html(note, "warn") if note else ""
        self.key_entry.region.value = self.region.value
        self._choices_changed()

    def _choices_changed(self, _change: Any = None) -> None:
        if self.code_toggle.value:
            self._render_code()

    def _toggle_code(self, change: dict) -> None:
        self.code_box.layout.display = None if change["new"] else "none"
        if change["new"]:
            self._render_code()

    def code_text(self, prompt: str | None = None) -> str:
        """The equivalent code for the current choices, as Markdown (``qwen_nb.snippets``)."""
        prompt = prompt or self.prompt.value or None
        try:
            from qwen_nb.snippets import snippet
        except ImportError:  # snippets not installed: a minimal Python example
            return _builtin_snippet(self.model.value, self.api.value, prompt)
        try:
            params = self.params.params()
            snip = snippet(
                model=self.model.value,
                profile=self.profile.value,
                api=self.api.value,
                language=self.code_language.value,
                prompt=prompt,
                session=self.session,
                stream=True,
                **params,
            )
        except Exception as err:  # show why instead of code
            return f"*No code for these choices:* {html.escape(scrub(str(err)))}"
        return snip._repr_markdown_()

    def _render_code(self, prompt: str | None = None) -> None:
        self.code.outputs = _markdown_output(self.code_text(prompt))


def _builtin_snippet(model: str | None, api: str | None, prompt: str | None) -> str:
    """A minimal Python example, used only when ``qwen_nb.snippets`` is unavailable."""
    code = (
        "import qwen_nb\n\n"
        f"for delta in qwen_nb.stream_chat({(prompt or 'Who are you?')!r}, model={model!r}, api={api!r}):\n"
        "    print(delta.content, end='')\n"
    )
    return f"```python\n{code}```\n"
