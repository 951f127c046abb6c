"""``Playground``: pick a profile and model, chat with streaming, see thinking, usage, errors and code.

A view over ``qwen_nb.widgets.controller.PlaygroundController``, which runs the calls (in
background threads, so the kernel stays free), streams, stops and keeps the conversation;
the view only turns its callbacks into widget updates. The answer is streamed into an
``Output`` widget as ``text/markdown`` (rendered by the stock output area of JupyterLab 4,
Notebook 7 and VS Code; no custom frontend), at most ~20 times a second plus a final update.

A ``Playground`` is a plain object that has a widget (``pg.widget``, a ``VBox``) and displays
as it; embed ``pg.widget`` to put it in another layout. Everything a button does is a method:
``send(prompt)``, ``stop()``, ``clear()``; the state is plain Python: ``history``,
``answer_text``, ``reasoning_text``, ``busy``, ``last_result``, ``last_error``,
``updates_sent``, ``stats`` and ``wait(timeout)``.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from qwen_nb.coalesce import DEFAULT_RATE
from qwen_nb.errors import InputError, ModelNotGrantedError
from qwen_nb.widgets._common import error_html, esc, note_html, pre_html, resolve_session, scrub
from qwen_nb.widgets.controller import STOP_GRACE, PlaygroundController, Run
from qwen_nb.widgets.conversation import Conversation
from qwen_nb.widgets.keys import KeyEntry
from qwen_nb.widgets.params import ParamsBox
from qwen_nb.widgets.pickers import ApiToggle, ModelPicker, ProfilePicker, RegionPicker, is_transient

if TYPE_CHECKING:
    from qwen_nb._profiles import Profile
    from qwen_nb.results import ChatResult
    from qwen_nb.session import Session

__all__ = ["CODE_LANGUAGES", "STOP_GRACE", "Playground"]

CODE_LANGUAGES = ("python", "curl", "node", "java", "go", "csharp", "php")


def _markdown_output(text: str) -> tuple[dict, ...]:
    """An ``Output.outputs`` value showing ``text`` as Markdown."""
    if not text:
        return ()
    return ({"output_type": "display_data", "data": {"text/markdown": text, "text/plain": text}, "metadata": {}},)


class Playground:
    """Pickers, parameters, a prompt box and a streamed, multi-turn chat with Send / Stop / Clear.

    ``pg.widget`` is the ``VBox`` shown; ``pg.controller`` the plain engine behind it.
    Extra keyword arguments go to the ``VBox`` (e.g. ``layout=``).
    """

    def __init__(
        self,
        session: Session | None = None,
        *,
        model: str | None = None,
        profile: str | None = None,
        api: str | None = None,
        system: str | None = None,
        rate: float = DEFAULT_RATE,
        **kwargs: Any,
    ) -> None:
        _check_session_arg(session)
        self.session: Session = resolve_session(session)
        if model is not None:
            _check_model_arg(self.session, model, profile)
        self.controller = PlaygroundController(
            self.session,
            system=system,
            rate=rate,
            on_start=self._on_start,
            on_update=self._on_update,
            on_status=self._on_status,
            on_error=self._show_error,
            on_finish=self._on_finish,
            on_clear=self._on_clear,
        )
        #: widget value pushes made while streaming (answer and thinking text)
        self.updates_sent = 0
        self._shown_answer = ""
        self._shown_reasoning = ""
        self._from_box = False  # the prompt being sent came from the prompt box

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

        #: the widget shown for this playground (embed it to put the playground in another layout)
        self.widget = widgets.VBox(
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

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        """Display as the playground's widget (with a short text form where widgets cannot show)."""
        bundle = self.widget._repr_mimebundle_(**kwargs)
        if bundle is not None:
            bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        turns = self.conversation.turns
        state = "answering" if self.busy else "idle"
        return (
            f"<qwen_nb Playground: {self.model.value} via {self.profile.value} ({self.api.value}); "
            f"{turns} turn{'s' if turns != 1 else ''}; {state}>"
        )

    def close(self) -> None:
        """Stop any running answer and close the playground's widgets (it cannot be shown again)."""
        self.controller.stop()
        todo: list[widgets.Widget] = [self.widget]
        while todo:
            w = todo.pop()
            todo.extend(c for c in getattr(w, "children", ()) if isinstance(c, widgets.Widget))
            w.close()

    # ------------------------------------------------------------------ plain state
    @property
    def conversation(self) -> Conversation:
        """The conversation (message history and system prompt)."""
        return self.controller.conversation

    @property
    def rate(self) -> float:
        """Display updates a second, at most, while streaming."""
        return self.controller.rate

    @property
    def busy(self) -> bool:
        """True while a call is streaming."""
        return self.controller.busy

    @property
    def history(self) -> list[dict]:
        """The conversation so far (message dicts, oldest first)."""
        return self.controller.history

    @property
    def answer_text(self) -> str:
        """The current (or last) answer text received."""
        return self.controller.answer_text

    @property
    def reasoning_text(self) -> str:
        """The current (or last) thinking text received."""
        return self.controller.reasoning_text

    @property
    def last_result(self) -> ChatResult | None:
        """The last call's ``ChatResult`` (the partial one, ``finish_reason="cancelled"``, after Stop)."""
        return self.controller.last_result

    @property
    def last_error(self) -> BaseException | None:
        """The last error shown (a refused send or a failed call); None after a successful send."""
        return self.controller.last_error

    @property
    def refused(self) -> int:
        """Sends (and clears) refused because a call was still running."""
        return self.controller.refused

    @property
    def stats(self) -> dict[str, Any]:
        """Numbers about the current (or last) stream: deltas, pushes, timings in seconds."""
        return self.controller.stats

    def wait(self, timeout: float | None = 30.0) -> bool:
        """Wait for the current call to finish; True if nothing is running any more."""
        return self.controller.wait(timeout)

    # ------------------------------------------------------------------ actions
    def send(self, prompt: str | None = None) -> bool:
        """Send ``prompt`` (default: the prompt box, which is then emptied) as the next turn; False if refused.

        Refused politely while another answer is streaming, for an empty prompt, and when the
        selected profile's key is of another region than the one selected.
        """
        self._from_box = prompt is None
        text = self.prompt.value if prompt is None else prompt
        return self.controller.send(
            text,
            model=self.model.value,
            profile=self.profile.value,
            api=self.api.value,
            params=self.params.params(),
            region=self.region.value,
        )

    def stop(self) -> bool:
        """Stop the current answer (the partial text stays); False if nothing was running."""
        return self.controller.stop()

    def clear(self) -> None:
        """Forget the conversation and clear the answer (refused while streaming)."""
        self.controller.clear()

    # ------------------------------------------------------------------ controller callbacks
    def _on_start(self, run: Run) -> None:
        self.error.value = ""
        self.usage.value = ""
        self.answer.outputs = ()
        self.thinking.value = ""
        self.thinking_box.layout.display = "none"
        self._shown_answer = self._shown_reasoning = ""
        if self._from_box:
            self.prompt.value = ""
        self.send_button.disabled = True
        self.stop_button.disabled = False
        if self.code_toggle.value:
            self._render_code(run.prompt)

    def _on_update(self, answer: str, reasoning: str) -> None:
        if reasoning and reasoning != self._shown_reasoning:
            if self.thinking_box.layout.display == "none":
                self.thinking_box.layout.display = None
            self.thinking.value = pre_html(reasoning)
            self._shown_reasoning = reasoning
            self.updates_sent += 1
        if answer and answer != self._shown_answer:
            self.answer.outputs = _markdown_output(scrub(answer))
            self._shown_answer = answer
            self.updates_sent += 1

    def _on_status(self, text: str, kind: str) -> None:
        self.status.value = note_html(text, kind) if text else ""

    def _show_error(self, err: BaseException) -> None:
        self.error.value = error_html(err)
        if isinstance(err, ModelNotGrantedError):
            self.model.relabel()

    def _on_finish(self, run: Run) -> None:
        if run.outcome == "failed" and not self.prompt.value:
            self.prompt.value = run.prompt  # nothing is lost: the prompt comes back to the box
        if run.outcome == "done":
            self.usage.value = f"<small>{esc(run.result.footer()) if run.result is not None else ''}</small>"
        self._render_history()
        self.send_button.disabled = False
        self.stop_button.disabled = True

    def _on_clear(self) -> None:
        self.answer.outputs = ()
        self.thinking.value = ""
        self.thinking_box.layout.display = "none"
        self.usage.value = ""
        self.error.value = ""
        self._render_history()

    # ------------------------------------------------------------------ helpers
    def _render_history(self) -> None:
        n = self.conversation.turns
        self.history_box.set_title(0, f"History ({n} turn{'s' if n != 1 else ''})")
        self.history_view.outputs = _markdown_output(scrub(self.conversation.markdown()))

    def _on_key_added(self, profile: Profile) -> None:
        self.profile.refresh(select=profile.name)
        if self.profile.value == profile.name:
            self.model.refresh(force=True)

    def _region_changed(self, _change: Any) -> None:
        note = self.profile.note
        self.status.value = note_html(note, "warn") if note else ""
        self.key_entry.region.value = self.region.value
        self._choices_changed()

    def _choices_changed(self, change: Any = None) -> None:
        if change is not None and is_transient(change):
            return
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


def _check_session_arg(session: Any) -> None:
    from qwen_nb.session import Session

    if session is not None and not isinstance(session, Session):
        raise InputError(
            f"Playground's first argument is a Session, got {type(session).__name__} {session!r}.",
            fix="Call Playground() for the default session, Playground(session) for your own, or name the "
            'choices: Playground(model="qwen-plus", profile="default").',
        )


def _check_model_arg(session: Session, model: Any, profile: str | None) -> None:
    """A model the profile can list (catalog, granted list, fetched list); else a did-you-mean."""
    from qwen_nb import catalog

    if not isinstance(model, str) or not model.strip():
        raise InputError(f"model must be a model name, got {model!r}.", fix='E.g. Playground(model="qwen-plus").')
    if catalog.model_info(model) is not None:
        return
    listed: list[str] = []
    try:
        prof = session.get_profile(profile)
        listed = list(prof.models or ()) + list(session.cached_models(prof.name) or ())
    except Exception:  # an unknown profile is the ProfilePicker's to report
        pass
    if model in listed:
        return
    guess = catalog.suggest(model, listed)
    hint = f"Did you mean {guess!r}? " if guess else ""
    raise InputError(
        f"Unknown model {model!r}: not in qwen-nb's catalog nor in the workspace's model list.",
        fix=f"{hint}Or call Playground() without model= and pick one from the Model list.",
    )


def _builtin_snippet(model: str | None, api: str | None, prompt: str | None) -> str:
    """A minimal Python example, used only when ``qwen_nb.snippets`` is unavailable."""
    code = (
        "import qwen_nb\n\n"
        f"for delta in qwen_nb.stream_chat({(prompt or 'Who are you?')!r}, model={model!r}, api={api!r}):\n"
        "    print(delta.content, end='')\n"
    )
    return f"```python\n{code}```\n"
