"""``error_card_html``: any error as a short card (headline, fix bullets, chips, details folded) for notebook views."""

from __future__ import annotations

from qwen_nb import _html
from qwen_nb.errors import summarize


def error_card_html(err: BaseException, *, actions_html: str = "") -> str:
    """``err`` as an HTML card: a one-line headline, 2-3 fix bullets, HTTP status / code / request id chips,
    ``actions_html`` (buttons or links the view adds), and the long text folded under "Details".

    Works for any exception (a ``QwenNbError`` gives its ``summary()``); keys are masked. The same card
    is the exception's own ``_repr_html_``, the ``%%qwen`` error output and a failed ``compare()`` cell.
    """
    return _html.error_card(summarize(err), title=type(err).__name__, actions_html=actions_html)


__all__ = ["error_card_html"]
