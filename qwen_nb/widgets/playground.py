"""``Playground``: a chat with Qwen in the notebook: pickers, parameters, and the conversation turn by turn.

A view over ``qwen_nb.widgets.controller.PlaygroundController``, which runs the calls (in
background threads, so the kernel stays free), streams, stops and keeps the conversation;
the view only turns its callbacks into widget updates.

The conversation reads top to bottom like a chat: each turn shows the question, the thinking
(open while it streams, with a running token count; folded when the answer starts), the
answer (``text/markdown`` in an ``Output`` widget, rendered by the stock output area of
JupyterLab 4, Notebook 7 and VS Code; streamed at most ~20 times a second plus a final
update), and a line of chips: how the turn ended (a stopped or failed turn says so), the
tokens and cost it was billed (also after Stop and after an error), and a **Code** button
that shows, beside the answer, the code making the request that turn actually sent (earlier
turns included), in the language chosen, with a copy button. A failed turn shows a short
error panel and, when another profile of the session can call the model, a button to send
the turn again with it. Under the prompt box a context line says what the next Send carries
("2 earlier turns · ~430 tokens will be sent"); **New chat** starts over; the total line
sums what this Playground's calls were billed, in the region's currency.

The API toggle's third choice, **Responses API**, sends the turns through the Responses API
(``Session.respond``): the Model list offers the Responses API models of the region, a row of
tool checkboxes (one per built-in tool of ``qwen_nb.facts.RESPONSE_TOOLS``, none ticked at first)
appears, and the chat parameters are disabled (not sent). Each tool call shows in the turn as a
step (tool, status, a short summary; its code and output unfold), the answer streams as in chat,
and the next Responses turn continues from the previous response on the service (the context
line says so) until New chat. Switching modes keeps the conversation: a chat turn sends the
earlier turns' text (tool steps are not resent), and a Responses turn after a chat turn sends the
earlier turns as input messages.

A ``Playground`` is a plain object that has a widget (``pg.widget``, a ``VBox``) and displays
as it; embed ``pg.widget`` to put it in another layout. Everything a button does is a method:
``send(prompt)``, ``stop()``, ``new_chat()`` (``clear()``), ``use_profile(turn)``; the state is
plain Python: ``history``, ``turns``, ``answer_text``, ``reasoning_text``, ``busy``,
``last_result``, ``last_error``, ``updates_sent``, ``stats`` and ``wait(timeout)``.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from qwen_nb import facts
from qwen_nb.coalesce import DEFAULT_RATE
from qwen_nb.errors import InputError, ModelNotGrantedError
from qwen_nb.normalize import estimate_tokens
from qwen_nb.widgets._common import (
    BAD,
    MUTED,
    OK,
    WARN,
    chip,
    error_panel_html,
    esc,
    note_html,
    pre_html,
    region_label,
    resolve_session,
    scrub,
)
from qwen_nb.widgets.controller import RESPONSES, STOP_GRACE, PlaygroundController, Run
from qwen_nb.widgets.conversation import Conversation
from qwen_nb.widgets.keys import KeyEntry
from qwen_nb.widgets.params import ParamsBox
from qwen_nb.widgets.pickers import HEADING, ApiToggle, ModelPicker, ProfilePicker, RegionPicker, is_transient

if TYPE_CHECKING:
    from qwen_nb._profiles import Profile
    from qwen_nb.media import ResponseResult, ResponseStep
    from qwen_nb.results import ChatResult
    from qwen_nb.session import Session

__all__ = ["CODE_LANGUAGES", "STOP_GRACE", "Playground", "TurnView"]

CODE_LANGUAGES = ("python", "curl", "node", "java", "go", "csharp", "php")
#: the languages of a Responses API turn's code (``qwen_nb.snippets.RESPONSES_LANGUAGES``)
RESPONSES_CODE_LANGUAGES = ("python", "curl")

# copies the code block next to the button (the clipboard API where allowed, else a selection and execCommand)
_COPY_JS = (
    "(function(b){var box=b.closest('.qwen-nb-code');var p=box&&box.querySelector('pre');if(!p)return;"
    "var t=p.innerText;var ok=function(){b.textContent='Copied';setTimeout(function(){b.textContent='Copy'},1500)};"
    "if(navigator.clipboard&&window.isSecureContext){navigator.clipboard.writeText(t).then(ok)}else{"
    "var r=document.createRange();r.selectNodeContents(p);var s=getSelection();s.removeAllRanges();s.addRange(r);"
    "document.execCommand('copy');s.removeAllRanges();ok()}})(this)"
)
_COPY_BUTTON = (
    f'<button type="button" class="qwen-nb-copy" title="Copy the code" onclick="{html.escape(_COPY_JS)}" '
    'style="font:inherit;font-size:var(--jp-widgets-font-size, 13px);padding:2px 10px;cursor:pointer;'
    'color:var(--jp-ui-font-color1, #000);background:var(--jp-layout-color2, #eee);'
    'border:1px solid var(--jp-border-color1, #bdbdbd);border-radius:2px">Copy</button>'
)


# an outcome chip: the coloured text straight on the output background (a grey chip would cost contrast)
_MARK = ";font-weight:600;background:transparent;border:1px solid currentColor"


def _markdown_output(text: str) -> tuple[dict, ...]:
    """An ``Output.outputs`` value showing ``text`` as Markdown."""
    if not text:
        return ()
    return ({"output_type": "display_data", "data": {"text/markdown": text, "text/plain": text}, "metadata": {}},)


def _wrap_row(**kw: Any) -> widgets.Layout:
    kw.setdefault("align_items", "center")
    return widgets.Layout(flex_flow="row wrap", width="auto", **kw)


def _button(description: str, icon: str, **kw: Any) -> widgets.Button:
    """A button as wide as its text: never truncated, never squeezed."""
    return widgets.Button(description=description, icon=icon,
                          layout=widgets.Layout(width="auto", flex="0 0 auto"), **kw)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _clip(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1] + "…"


_STEP_BOX = ("border-left:3px solid var(--jp-brand-color1, #1976d2);padding:1px 6px;margin:2px 0;line-height:1.45;"
             "color:var(--jp-ui-font-color1, #000);overflow-wrap:anywhere;font-size:90%")


def step_html(step: ResponseStep) -> str:
    """One tool step of a Responses turn: tool, status and a short summary on one line; the code and output
    (when there are any beyond the summary) unfold below it."""
    status = step.status or "?"
    mark = OK if status == "completed" else WARN
    summary = _clip(step.detail, 90)
    head = (f'<b>{esc(step.title)}</b> <span style="{mark};font-weight:600">{esc(status)}</span>'
            + (f' · <span style="{MUTED}">{esc(summary)}</span>' if summary else ""))
    more = step.output or (step.detail if summary != step.detail.strip() else "")
    if not more:
        return f'<div class="qwen-nb-step" style="{_STEP_BOX}">{head}</div>'
    body = ""
    if summary != step.detail.strip():
        body += f'<pre style="white-space:pre-wrap;margin:2px 0">{esc(step.detail)}</pre>'
    if step.output:
        body += f'<pre style="white-space:pre-wrap;margin:2px 0">→ {esc(step.output)}</pre>'
    return (f'<details class="qwen-nb-step" style="{_STEP_BOX}"><summary style="cursor:pointer">{head}</summary>'
            f"{body}</details>")


class TurnView:
    """One turn of the conversation: question, thinking, answer, error and action, usage chips, code."""

    def __init__(self, run: Run, playground: Playground) -> None:
        self.run = run
        self._pg = playground
        self.question = widgets.HTML(self._question_html(), layout=widgets.Layout(width="auto"))
        #: the tool steps of a Responses turn, one ``HTML`` each
        self.steps = widgets.VBox([], layout=widgets.Layout(width="auto"))
        self.steps.add_class("qwen-nb-steps")
        self.steps.layout.display = "none"
        self.thinking = widgets.HTML()
        self.thinking_box = widgets.Accordion(children=[self.thinking], titles=("Thinking",), selected_index=None,
                                              layout=widgets.Layout(width="auto"))
        self.thinking_box.layout.display = "none"
        self._folded = False  # the thinking was folded when the answer started
        self.answer = widgets.Output(layout={"border": "1px solid var(--jp-border-color2, #ddd)", "padding": "0 4px",
                                             "width": "auto", "min_height": "1.5em"})
        self.error = widgets.HTML(layout=widgets.Layout(width="auto"))
        self.action = _button("", "user")
        self.action.layout.align_self = "flex-start"
        self.action.layout.display = "none"
        self.action.on_click(lambda _b: self._pg.use_profile(self))
        self.usage = widgets.HTML(chip("answering…"), layout=widgets.Layout(flex="1 1 20em", max_width="100%"))
        self.code_toggle = widgets.ToggleButton(description="Code", icon="code", value=False,
                                                tooltip="the code that makes this turn's request (earlier turns "
                                                "included)", layout=widgets.Layout(width="auto", flex="0 0 auto"))
        languages = RESPONSES_CODE_LANGUAGES if run.responses else CODE_LANGUAGES
        self.code_language = widgets.Dropdown(options=languages, value=playground.code_language_default
                                              if playground.code_language_default in languages else languages[0],
                                              description="Language", style={"description_width": "initial"},
                                              layout=widgets.Layout(width="14em", max_width="100%"))
        self.copy = widgets.HTML(_COPY_BUTTON, layout=widgets.Layout(flex="0 0 auto"))
        self.code = widgets.Output(layout=widgets.Layout(width="auto", overflow="auto"))
        self.code_box = widgets.VBox([widgets.HBox([self.code_language, self.copy], layout=_wrap_row()), self.code],
                                     layout=widgets.Layout(flex="1 1 30em", min_width="0", max_width="100%"))
        self.code_box.add_class("qwen-nb-code")
        self.code_box.layout.display = "none"
        self.main = widgets.VBox([self.steps, self.thinking_box, self.answer, self.error, self.action],
                                 layout=widgets.Layout(flex="1 1 30em", min_width="0", max_width="100%"))
        self.body = widgets.HBox([self.main, self.code_box], layout=_wrap_row(align_items="flex-start"))
        self.footer = widgets.HBox([self.usage, self.code_toggle], layout=_wrap_row())
        self.code_toggle.observe(self._toggle_code, names="value")
        self.code_language.observe(lambda _c: self.render_code(), names="value")
        self.code_language.observe(playground._language_chosen, names="value")
        #: the widget of this turn
        self.widget = widgets.VBox([self.question, self.body, self.footer],
                                   layout=widgets.Layout(width="auto", margin="4px 0 8px 0"))
        self.widget.add_class("qwen-nb-turn")

    # -- parts
    def _question_html(self) -> str:
        r = self.run
        if r.previous_response_id:
            ctx = f"continues from the previous response (~{r.context_tokens} tokens sent)"
        elif r.earlier_turns:
            ctx = f"sent with {_plural(r.earlier_turns, 'earlier turn')} (~{r.context_tokens} tokens)"
        else:
            ctx = f"~{r.context_tokens} tokens sent"
        api = r.api
        if r.responses:
            api = "Responses API" + (f" · tools: {', '.join(r.tools)}" if r.tools else " · no tools")
        meta = f"turn {r.index} · {r.model} · {r.profile} · {api} · {ctx}"
        return (
            '<div style="border-top:1px solid var(--jp-border-color2, #e0e0e0);padding-top:4px">'
            f'<div style="font-size:85%;line-height:1.5;{MUTED};overflow-wrap:anywhere"><b>You</b> · {esc(meta)}</div>'
            '<div class="qwen-nb-question" style="white-space:pre-wrap;overflow-wrap:anywhere;padding:2px 0 2px 8px;'
            'border-left:3px solid var(--jp-brand-color1, #1976d2);margin:2px 0">'
            f"{esc(r.prompt)}</div></div>"
        )

    def update(self, answer: str, reasoning: str) -> int:
        """Show the text so far; returns the number of widget values pushed."""
        pushes = 0
        if reasoning and reasoning != self._shown_reasoning:
            if self.thinking_box.layout.display == "none":
                self.thinking_box.layout.display = None
            tokens = estimate_tokens(reasoning)
            if not answer and not self._folded:
                self.thinking_box.set_title(0, f"Thinking… ~{tokens} tokens")
                if self.thinking_box.selected_index is None:
                    self.thinking_box.selected_index = 0  # open while it streams
            self.thinking.value = pre_html(reasoning)
            self._shown_reasoning = reasoning
            pushes += 1
        if answer and not self._folded:
            self._folded = True
            if reasoning:
                self.thinking_box.set_title(0, f"Thinking · ~{estimate_tokens(reasoning)} tokens")
            self.thinking_box.selected_index = None  # folded when the answer starts
        if answer and answer != self._shown_answer:
            self.answer.outputs = _markdown_output(scrub(answer))
            self._shown_answer = answer
            pushes += 1
        return pushes

    _shown_answer = ""
    _shown_reasoning = ""

    def add_step(self, step: ResponseStep) -> None:
        """Show a finished tool step (a Responses turn) above the answer."""
        self.steps.children = (*self.steps.children,
                               widgets.HTML(step_html(step), layout=widgets.Layout(width="auto")))
        self.steps.layout.display = None

    def finish(self) -> None:
        """Mark the turn as it ended: chips for outcome, usage and cost; the error panel and action."""
        r = self.run
        usage = r.usage
        if r.reasoning and usage is not None and usage.reasoning_tokens:
            self.thinking_box.set_title(0, f"Thinking · {usage.reasoning_tokens} tokens")
        if not r.answer:
            self.answer.layout.display = "none"
        chips = []
        if r.outcome == "stopped":
            chips.append(chip("■ stopped", WARN + _MARK))
        elif r.outcome == "failed":
            chips.append(chip("✗ failed" if r.sent else "✗ not sent", BAD + _MARK))
        if usage is None:
            chips.append(chip("billed: unknown (see usage())"))
        elif not (usage.input_tokens or usage.output_tokens):
            chips.append(chip("nothing billed"))
        else:
            prefix = "billed " if r.outcome != "done" else ""
            chips.append(chip(prefix + usage.line()))
        if r.cost is not None and usage is not None and (usage.input_tokens or usage.output_tokens):
            chips.append(chip(f"≈{r.cost:.6f} {r.currency}"))
        elif usage is not None and (usage.input_tokens or usage.output_tokens):
            chips.append(chip(f"cost unknown ({r.currency})"))
        if r.result is not None:
            chips.append(chip(f"{r.result.latency * 1000:.0f} ms"))
        chips.append(chip(f"{r.model} · {r.profile} ({r.region}) · {'Responses API' if r.responses else r.api}"))
        self.usage.value = "".join(chips)
        if r.error is not None:
            self.error.value = error_panel_html(r.error)
        if r.action:
            self.action.description = f"Use profile '{r.action}'"
            self.action.tooltip = f"switch the profile picker to {r.action!r} and send this turn again"
            self.action.layout.display = None
        if self.code_toggle.value:
            self.render_code()

    # -- code
    def _toggle_code(self, change: dict) -> None:
        self.code_box.layout.display = None if change["new"] else "none"
        if change["new"]:
            self.render_code()

    def code_text(self, language: str | None = None) -> str:
        """The code making this turn's request (the messages actually sent), as Markdown."""
        r = self.run
        language = language or self.code_language.value
        history = [m for m in r.messages[:-1] if m.get("role") in ("user", "assistant")]
        system = next((m["content"] for m in r.messages if m.get("role") == "system"), None)
        try:
            from qwen_nb.snippets import snippet
        except ImportError:  # snippets not installed: a minimal Python example
            return _builtin_snippet(r.model, r.api, r.prompt)
        try:
            if r.responses:  # the request sent: the input, the tools, the response it continued from
                snip = snippet(model=r.model, profile=r.profile, language=language, prompt=r.prompt,
                               session=self._pg.session, stream=True, system=system, history=history,
                               responses=True, tools=r.tools, previous_response_id=r.previous_response_id)
            else:
                snip = snippet(model=r.model, profile=r.profile, api=r.api, language=language, prompt=r.prompt,
                               session=self._pg.session, stream=True, system=system, history=history, **r.params)
        except Exception as err:  # show why instead of code
            return f"*No code for this request:* {html.escape(scrub(str(err)))}"
        return snip._repr_markdown_()

    def render_code(self) -> None:
        self.code.outputs = _markdown_output(self.code_text())


class Playground:
    """Pickers, parameters, the conversation turn by turn, a prompt box with Send / Stop / New chat.

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
            on_step=self._on_step,
        )
        #: widget value pushes made while streaming (answer and thinking text)
        self.updates_sent = 0
        #: the language the Code panels open in (the last one chosen)
        self.code_language_default = "python"
        #: the turns shown, oldest first
        self.turn_views: list[TurnView] = []
        self._views: dict[int, TurnView] = {}
        self._from_box = False  # the prompt being sent came from the prompt box
        self._error_widget: widgets.HTML | None = None
        self._no_turn_toggle = widgets.ToggleButton(description="Code")
        self._no_turn_language = widgets.Dropdown(options=CODE_LANGUAGES, value="python", description="Language")
        self._no_turn_language.observe(self._language_chosen, names="value")

        # pickers
        self.region = RegionPicker(self.session)
        self.profile = ProfilePicker(self.session, region=self.region, value=profile)
        self.model = ModelPicker(self.session, profile=self.profile, value=model)
        # the toggle's own description wraps above its buttons in some frontends: a label of its own instead
        self.api = ApiToggle(self.session, value=api, description="", responses=True)
        #: the Responses API mode's built-in tools, one checkbox each (none ticked at first)
        self.tools = {name: widgets.Checkbox(value=False, description=name.replace("_", " "), indent=False,
                                             tooltip=f'the built-in tool "{name}"',
                                             layout=widgets.Layout(width="auto", flex="0 0 auto", margin="0 12px 0 0"))
                      for name in facts.RESPONSE_TOOLS}
        self.tools_box = widgets.HBox(
            [widgets.Label("Tools", layout=widgets.Layout(width="auto", flex="0 0 auto", margin="0 8px 0 4px")),
             widgets.HBox(list(self.tools.values()), layout=_wrap_row(flex="1 1 auto", min_width="0"))],
            layout=widgets.Layout(flex_flow="row nowrap", width="auto", align_items="flex-start"))
        self.tools_box.add_class("qwen-nb-tools")
        self.api_label = widgets.Label("API", layout=widgets.Layout(width="auto", flex="0 0 auto", margin="0 4px"))
        self.params = ParamsBox(self.session, model=self.model)
        self.key_entry = KeyEntry(self.session, region=self.region.value)
        self.key_entry.on_added(self._on_key_added)

        # the conversation, the prompt and the buttons
        self.chat = widgets.VBox([], layout=widgets.Layout(width="auto"))
        self.chat.add_class("qwen-nb-chat")
        self.prompt = widgets.Textarea(placeholder="Ask Qwen…", layout=widgets.Layout(width="auto", height="5em"))
        self.send_button = _button("Send", "paper-plane", button_style="primary")
        self.stop_button = _button("Stop", "stop", disabled=True)
        self.new_chat_button = _button("New chat", "plus", tooltip="start over: earlier turns are not sent any more")
        #: the New chat button (its old name)
        self.clear_button = self.new_chat_button
        self.context = widgets.HTML(layout=widgets.Layout(flex="1 1 16em", max_width="100%"))
        self.total = widgets.HTML(layout=widgets.Layout(flex="0 1 auto", max_width="100%"))
        self.send_button.on_click(lambda _b: self.send())
        self.stop_button.on_click(lambda _b: self.stop())
        self.new_chat_button.on_click(lambda _b: self.new_chat())
        self.status = widgets.HTML(layout=widgets.Layout(width="auto"))
        #: errors of sends refused before any turn started (empty prompt, region mismatch, ...)
        self.refusal = widgets.HTML(layout=widgets.Layout(width="auto"))
        self.settings = widgets.Accordion(
            children=[self.params, self.key_entry], titles=("Parameters", "Add a key"), selected_index=None,
            layout=widgets.Layout(width="auto"),
        )

        self.region.observe(self._region_changed, names="value")
        self.prompt.observe(lambda _c: self._render_context(), names="value")
        self.model.observe(self._model_changed, names="value")
        self.api.observe(self._api_changed, names="value")
        self.model.observe(lambda _c: self._note_no_model(), names="options")

        #: the widget shown for this playground (embed it to put the playground in another layout)
        kwargs.setdefault("layout", widgets.Layout(width="100%", max_width="100%"))
        self.widget = widgets.VBox(
            children=[
                widgets.HBox([self.region, self.profile], layout=_wrap_row()),
                widgets.HBox([self.model, widgets.HBox([self.api_label, self.api], layout=widgets.Layout(
                    flex_flow="row nowrap", align_items="center", max_width="100%", min_width="0", flex="0 1 auto"))],
                    layout=_wrap_row()),
                self.tools_box,
                self.settings,
                self.chat,
                self.prompt,
                widgets.HBox([self.send_button, self.stop_button, self.new_chat_button, self.context],
                             layout=_wrap_row()),
                self.refusal,
                self.status,
                self.total,
            ],
            **kwargs,
        )
        self.widget.add_class("qwen-nb-playground")
        self._apply_mode()
        self._render_context()
        self._render_total()

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
        for w in (self.region, self.profile, self.model):
            w._unsubscribe()
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
    def turns(self) -> list[Run]:
        """Every turn of this conversation (stopped and failed ones too), oldest first."""
        return list(self.controller.turns)

    @property
    def current(self) -> TurnView | None:
        """The view of the latest turn (None before the first one and after New chat)."""
        return self.turn_views[-1] if self.turn_views else None

    # the latest turn's parts, by their old names
    @property
    def answer(self) -> widgets.Output | None:
        """The latest turn's answer (an ``Output``), None before the first turn."""
        return self.current.answer if self.current else None

    @property
    def usage(self) -> widgets.HTML | None:
        """The latest turn's chips: outcome, tokens and cost billed, latency."""
        return self.current.usage if self.current else None

    @property
    def thinking_box(self) -> widgets.Accordion | None:
        """The latest turn's thinking section."""
        return self.current.thinking_box if self.current else None

    @property
    def code_toggle(self) -> widgets.ToggleButton:
        """The latest turn's Code button (before any turn, a stand-in that is not shown)."""
        return self.current.code_toggle if self.current else self._no_turn_toggle

    @property
    def code_language(self) -> widgets.Dropdown:
        """The latest turn's language selector (before any turn, a stand-in that sets the default)."""
        return self.current.code_language if self.current else self._no_turn_language

    @property
    def error(self) -> widgets.HTML:
        """Where the last error was shown: the failed turn's panel, or the refusal line under the prompt."""
        return self._error_widget or self.refusal

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
    def responses(self) -> bool:
        """True in the Responses API mode (the API toggle's third choice)."""
        return self.api.value == RESPONSES

    @property
    def tools_ticked(self) -> list[str]:
        """The built-in tools ticked (sent with Responses API turns)."""
        return [name for name, box in self.tools.items() if box.value]

    @property
    def last_result(self) -> ChatResult | ResponseResult | None:
        """The last call's ``ChatResult`` (the partial one, ``finish_reason="cancelled"``, after Stop), or a
        Responses turn's ``ResponseResult``."""
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
        selected profile's key is of another region than the one selected. A model the
        profile is known not to be granted makes a failed turn with nothing sent.
        """
        self._from_box = prompt is None
        text = self.prompt.value if prompt is None else prompt
        return self.controller.send(
            text,
            model=self.model.value if self.model.value != HEADING else None,
            profile=self.profile.value,
            api=self.api.value,
            params=self.params.params(),
            region=self.region.value,
            check_grants=True,
            tools=self.tools_ticked if self.responses else None,
        )

    def stop(self) -> bool:
        """Stop the current answer (the partial text stays, marked stopped, with what it was billed)."""
        return self.controller.stop()

    def new_chat(self) -> bool:
        """Start a new conversation: the turns are cleared and nothing earlier is sent (refused while streaming)."""
        return self.controller.new_chat()

    def clear(self) -> bool:
        """``new_chat()``: forget the conversation (refused while streaming)."""
        return self.controller.clear()

    def use_profile(self, turn: TurnView | Run | None = None) -> bool:
        """Switch the profile picker to the profile offered for a refused turn and send the turn again with it.

        While another answer is streaming the turn is only readied: the profile is switched and
        its prompt put back in the prompt box.
        """
        view = turn if isinstance(turn, TurnView) else next(
            (v for v in reversed(self.turn_views) if turn is None or v.run is turn), None)
        if view is None or not view.run.action:
            return False
        run = view.run
        view.action.disabled = True  # used: the new turn below is the answer
        self.profile.value = run.action
        if run.model in [v for _, v in self.model.options]:
            self.model.value = run.model
        if self.busy:
            self.prompt.value = run.prompt
            return False
        if self.prompt.value == run.prompt:
            self.prompt.value = ""
        self._from_box = False
        if self.api.value != run.api:
            self.api.value = run.api
        return self.controller.retry_with_profile(run, region=self.region.value, check_grants=True)

    # ------------------------------------------------------------------ controller callbacks
    def _on_start(self, run: Run) -> None:
        self.refusal.value = ""
        self._error_widget = None
        view = TurnView(run, self)
        self.turn_views.append(view)
        self._views[id(run)] = view
        self.chat.children = (*self.chat.children, view.widget)
        if self._from_box:
            self.prompt.value = ""
        self.send_button.disabled = True
        self.stop_button.disabled = False
        self.new_chat_button.disabled = True

    def _on_update(self, answer: str, reasoning: str) -> None:
        run = self.controller.run
        view = self._views.get(id(run)) if run is not None else None
        if view is not None:
            self.updates_sent += view.update(answer, reasoning)

    def _on_step(self, step: ResponseStep) -> None:
        run = self.controller.run
        view = self._views.get(id(run)) if run is not None else None
        if view is not None:
            view.add_step(step)
            self.updates_sent += 1

    def _on_status(self, text: str, kind: str) -> None:
        self.status.value = note_html(text, kind) if text else ""

    def _show_error(self, err: BaseException) -> None:
        run = self.controller.run
        view = self._views.get(id(run)) if run is not None and run.error is err else None
        if view is None:  # refused before a turn started
            self.refusal.value = error_panel_html(err)
            self._error_widget = self.refusal
        else:
            self._error_widget = view.error
        if isinstance(err, ModelNotGrantedError):
            self.model.relabel()

    def _on_finish(self, run: Run) -> None:
        view = self._views.get(id(run))
        if run.outcome == "failed" and not self.prompt.value and run.action is None:
            self.prompt.value = run.prompt  # nothing is lost: the prompt comes back to the box
        if view is not None:
            view.finish()
        self.send_button.disabled = False
        self.stop_button.disabled = True
        self.new_chat_button.disabled = False
        self._render_context()
        self._render_total()

    def _on_clear(self) -> None:
        for view in self.turn_views:
            view.widget.close()
        self.turn_views.clear()
        self._views.clear()
        self.chat.children = ()
        self.refusal.value = ""
        self._error_widget = None
        self._render_context()

    # ------------------------------------------------------------------ helpers
    def _language_chosen(self, change: dict) -> None:
        self.code_language_default = change["new"]  # the next Code panels open in it

    def _api_changed(self, change: Any) -> None:
        self._apply_mode()
        self._render_context()
        turns = self.conversation.turns
        if not turns:
            return
        earlier = _plural(turns, "earlier turn")
        if self.responses:
            note = (f"Responses API mode: the next turn sends the {earlier} as input messages (their text), then "
                    "continues from each response on the service. New chat starts over.")
        else:
            note = (f"Chat mode: the next turn sends the {earlier} as messages (their text; tool steps are not "
                    "resent). New chat starts over.")
        self.status.value = note_html(note, "info")

    def _apply_mode(self) -> None:
        """Show the Responses API mode's tools and models, or chat's."""
        on = self.responses
        self.tools_box.layout.display = None if on else "none"
        self.model.set_kind(RESPONSES if on else None)
        self.params.set_responses(on)
        self._note_no_model()

    def _note_no_model(self) -> None:
        """Say so when the Responses API mode has no model in the profile's region."""
        if self.responses and not self.model.options:
            prof = self.profile.profile
            offered = sorted({r for m in facts.KIND_MODELS.values() if m.kind == RESPONSES for r in m.regions})
            self.status.value = note_html(
                f"No Responses API model is offered in {region_label(prof.region) if prof else 'this region'}; "
                f"it is offered in {', '.join(region_label(r) for r in offered)}: pick a profile of that region.",
                "warn")

    def _render_context(self) -> None:
        line = self.controller.context_line(self.prompt.value, self.api.value)
        style = f"font-size:90%;display:inline-block;line-height:1.45;{MUTED}"
        self.context.value = f'<span style="{style}">{esc(line)}</span>'

    def _render_total(self) -> None:
        self.total.value = f'<span style="font-size:90%;{MUTED}">{esc(self.controller.total_line())}</span>'

    def _on_key_added(self, profile: Profile) -> None:
        self.profile.refresh(select=profile.name)
        if self.profile.value == profile.name:
            self.model.refresh(force=True)

    def _region_changed(self, change: Any) -> None:
        if is_transient(change):
            return
        note = self.profile.note
        self.status.value = note_html(note, "warn") if note else ""
        if change["new"] in [v for _, v in self.key_entry.region.options]:
            self.key_entry.region.value = change["new"]
        self._note_no_model()

    def _model_changed(self, change: Any) -> None:
        if is_transient(change) or change["new"] in (None, HEADING):
            return
        if change["new"] in self.model.not_granted():
            self.status.value = note_html(
                f"{self.profile.value!r} is not granted {change['new']!r}: Send will not call it.", "warn")
        elif self.status.value and "is not granted" in self.status.value:
            self.status.value = ""

    def code_text(self, prompt: str | None = None) -> str:
        """The code of the latest turn's request (history included), as Markdown; before any turn, a single prompt."""
        if self.current is not None and prompt is None:
            return self.current.code_text()
        prompt = prompt or self.prompt.value or None
        try:
            from qwen_nb.snippets import snippet
        except ImportError:  # snippets not installed: a minimal Python example
            return _builtin_snippet(self.model.value, self.api.value, prompt)
        try:
            if self.responses:
                snip = snippet(model=self.model.value, profile=self.profile.value, language=self.code_language.value,
                               prompt=prompt, session=self.session, stream=True, responses=True,
                               tools=self.tools_ticked,
                               previous_response_id=self.controller.continues(RESPONSES))
            else:
                snip = snippet(model=self.model.value, profile=self.profile.value, api=self.api.value,
                               language=self.code_language.value, prompt=prompt, session=self.session, stream=True,
                               **self.params.params())
        except Exception as err:  # show why instead of code
            return f"*No code for these choices:* {html.escape(scrub(str(err)))}"
        return snip._repr_markdown_()


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
