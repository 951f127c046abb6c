"""``ParamsBox``: temperature, max tokens, thinking on/off and budget, seed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from qwen_nb.catalog import model_info
from qwen_nb.facts import PARAMS as _SPECS
from qwen_nb.widgets._common import resolve_session
from qwen_nb.widgets.pickers import is_transient

#: the sliders' ranges are the service facts' (a slider shows a closed range: the open end is stepped back)
_T_LOW, _T_HIGH = float(_SPECS["temperature"].low or 0.0), float(_SPECS["temperature"].high or 2.0)
_SEED_HIGH = int(_SPECS["seed"].high or 2**31)

if TYPE_CHECKING:
    from qwen_nb.session import Session

_LABEL = {"description_width": "initial"}
_HINT = ('<span style="font-size:85%;color:var(--jp-ui-font-color1, inherit)">Max tokens 0: the model\'s default · '
         "Thinking budget 0: no limit · Seed -1: not fixed</span>")
_RESPONSES_HINT = ('<div style="font-size:85%;line-height:1.45;color:var(--jp-ui-font-color1, inherit)">Responses API '
                   "mode: these chat parameters are not sent (the call sends the model, the input, the tools ticked "
                   "and the previous response's id)</div>")


def _cell(width: str = "16em") -> widgets.Layout:
    """A control that keeps its width (a slider never shrinks to a dot) and wraps to the next row instead."""
    return widgets.Layout(width=width, min_width=width, max_width="100%", flex="0 0 auto")


def _row() -> widgets.Layout:
    return widgets.Layout(flex_flow="row wrap", width="auto", align_items="center")


class ParamsBox(widgets.VBox):
    """Request parameters as widgets; ``params()`` gives the keyword arguments for ``Session.chat``.

    Linked to a ``ModelPicker`` (``model=``), the thinking switch follows the model: off and
    disabled for models without thinking, on and disabled for thinking-only models, the
    model's default for hybrid ones. ``set_responses(True)`` (the Playground's Responses API
    mode, whose call takes none of these) disables them and says so.
    """

    def __init__(self, session: Session | None = None, *, model: widgets.ValueWidget | None = None,
                 **kwargs: Any) -> None:
        self.session = resolve_session(session)
        self.model_picker = model
        self.temperature = widgets.FloatSlider(
            value=0.7, min=_T_LOW, max=_T_HIGH - 0.01, step=0.05, description="Temperature", readout_format=".2f",
            style=_LABEL, layout=_cell("23em"),
        )
        self.max_tokens = widgets.BoundedIntText(
            value=0, min=0, max=65_536, description="Max tokens", tooltip="0: the model's default", style=_LABEL,
            layout=_cell("12em"),
        )
        self.thinking = widgets.Checkbox(value=False, description="Thinking", indent=False, layout=_cell("7em"))
        self.thinking_budget = widgets.BoundedIntText(
            value=0, min=0, max=1_000_000, description="Thinking budget", tooltip="thinking tokens; 0: no limit",
            style=_LABEL, layout=_cell("14em"),
        )
        self.seed = widgets.BoundedIntText(
            value=-1, min=-1, max=_SEED_HIGH - 1, description="Seed", tooltip="-1: not fixed", style=_LABEL,
            layout=_cell("10em"),
        )
        #: what the special values mean, said on screen (not only in tooltips)
        self.hint = widgets.HTML(_HINT, layout=widgets.Layout(max_width="100%"))
        #: True in the Responses API mode: nothing here is sent
        self.responses = False
        self.thinking.observe(self._sync_budget, names="value")
        super().__init__(
            children=[
                widgets.HBox([self.temperature, self.max_tokens, self.seed], layout=_row()),
                widgets.HBox([self.thinking, self.thinking_budget], layout=_row()),
                self.hint,
            ],
            **kwargs,
        )
        if model is not None:
            model.observe(lambda change: None if is_transient(change) else self.follow_model(change["new"]),
                          names="value")
            self.follow_model(model.value)
        else:
            self.follow_model(getattr(self.session, "default_model", None))
        self._sync_budget()

    def _sync_budget(self, _change: Any = None) -> None:
        self.thinking_budget.disabled = not self.thinking.value

    def follow_model(self, model: str | None) -> None:
        """Set the thinking switch to what ``model`` supports."""
        info = model_info(model) if model else None
        if info is None:
            self.thinking.disabled = False
        elif info.thinking == "never":
            self.thinking.value = False
            self.thinking.disabled = True
        elif info.thinking == "always":
            self.thinking.value = True
            self.thinking.disabled = True
        else:
            self.thinking.disabled = False
            self.thinking.value = info.thinking_default
        self._sync_budget()
        if self.responses:
            self.thinking.disabled = self.thinking_budget.disabled = True

    def set_responses(self, on: bool) -> None:
        """The Responses API mode (``on``): these chat parameters are not sent, so they are disabled, and the hint
        says so; off: back to what the model allows."""
        self.responses = bool(on)
        for w in (self.temperature, self.max_tokens, self.seed):
            w.disabled = self.responses
        self.hint.value = _RESPONSES_HINT if self.responses else _HINT
        self.follow_model(self.model_picker.value if self.model_picker is not None else None)

    def params(self) -> dict[str, Any]:
        """Keyword arguments for ``Session.chat`` / ``stream_chat``; unset values left out."""
        out: dict[str, Any] = {"temperature": round(float(self.temperature.value), 2)}
        if self.max_tokens.value > 0:
            out["max_tokens"] = int(self.max_tokens.value)
        model = self.model_picker.value if self.model_picker is not None else None
        info = model_info(model) if model else None
        if info is None or info.thinking == "hybrid":
            if self.thinking.value or info is not None:
                out["enable_thinking"] = bool(self.thinking.value)
        if self.thinking.value and self.thinking_budget.value > 0:
            out["thinking_budget"] = int(self.thinking_budget.value)
        if self.seed.value >= 0:
            out["seed"] = int(self.seed.value)
        return out
