"""``UsagePanel``: the running usage and cost per workspace of a session, refreshed as calls land.

A view only: it shows ``ledger.report(...)`` (the same numbers ``qwen_nb.usage()``
returns) and re-renders when the ledger notifies a new record. It never holds a key.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from qwen_nb import _html
from qwen_nb.ledger import CallRecord, Ledger, UsageReport

if TYPE_CHECKING:
    from qwen_nb.session import Session


def _since_label(since: float | None) -> str:
    if since is None:
        return "all recorded calls"
    return "since " + dt.datetime.fromtimestamp(since).strftime("%Y-%m-%d %H:%M")


class UsagePanel(widgets.VBox):
    """Calls, errors, tokens and cost per currency for each workspace, with a Refresh button.

    ``since="session"`` (default) counts the calls made since the session started
    (``Session.started_at``; with only a ``ledger``, since that ledger was opened in this kernel);
    ``since=None`` counts everything in the ledger; any value ``Ledger.report`` takes
    is accepted too. With ``auto=True`` it refreshes itself after each recorded call (at most
    once per ``min_interval`` seconds, plus a trailing refresh).
    """

    def __init__(
        self,
        session: Session | None = None,
        *,
        ledger: Ledger | None = None,
        since: Any = "session",
        by: str = "workspace",
        auto: bool = True,
        min_interval: float = 0.25,
        **kwargs: Any,
    ) -> None:
        if ledger is None:
            from qwen_nb.widgets._common import resolve_session

            session = resolve_session(session)
            ledger = session.ledger
        self.ledger: Ledger = ledger
        if since == "session":
            # the session opens its ledger at its first call, after that call started: count from the
            # session's start, so the calls made before the panel was shown are in it
            started = getattr(session, "started_at", None) if session is not None else None
            since = started if isinstance(started, (int, float)) else ledger.opened_at
        self.since = since
        self.by = by
        self.min_interval = min_interval
        #: how many times the view was re-rendered (for tests and curiosity)
        self.refresh_count = 0
        self.report: UsageReport | None = None
        self._throttle = threading.Lock()
        self._last = 0.0
        self._timer: threading.Timer | None = None
        self._remove_listener: Callable[[], Any] | None = None

        self.title = widgets.HTML()
        self.table = widgets.HTML()
        self.button = widgets.Button(description="Refresh", icon="refresh", layout=widgets.Layout(width="auto"))
        self.button.on_click(lambda _b: self.refresh())
        header = widgets.HBox([self.title, self.button],
                              layout=widgets.Layout(align_items="center", flex_flow="row wrap", gap="4px 12px"))
        super().__init__(children=[header, self.table], **kwargs)
        self.add_class("qwen-nb-usage-panel")
        self.refresh()
        if auto:
            ref = weakref.ref(self)

            def listener(rec: CallRecord) -> None:
                panel = ref()
                if panel is None:
                    ledger.remove_listener(listener)
                else:
                    panel._on_record(rec)

            self._remove_listener = ledger.add_listener(listener)

    def refresh(self) -> UsageReport:
        """Re-read the ledger and re-render; returns the report shown."""
        report = self.ledger.report(since=self.since, by=self.by)
        self.report = report
        totals = report.totals
        costs = " + ".join(f"{v:.4f} {c}" for c, v in sorted(totals["costs"].items())) or "no known cost"
        counts = f"{totals.calls} calls, {totals.errors} errors"
        if totals.probe_refusals:
            counts += f", {totals.probe_refusals} probe refusals"
        figures = [_since_label(report.since), counts, costs]
        self.title.value = _html.block(
            f"<b>Usage by {_html.esc(self.by)}</b> <span class='qnb-muted'>· "
            + " · ".join(_html.esc(f) for f in figures) + "</span>", "qwen-nb-usage-title")
        self.table.value = report._repr_html_()
        self.refresh_count += 1
        return report

    def _on_record(self, _rec: CallRecord) -> None:
        with self._throttle:
            now = time.monotonic()
            if self._timer is None and now - self._last >= self.min_interval:
                self._last = now
                run_now = True
            else:
                run_now = False
                if self._timer is None:
                    delay = max(0.0, self.min_interval - (now - self._last))
                    self._timer = threading.Timer(delay, self._trailing)
                    self._timer.daemon = True
                    self._timer.start()
        if run_now:
            self._safe_refresh()

    def _trailing(self) -> None:
        with self._throttle:
            self._timer = None
            self._last = time.monotonic()
        self._safe_refresh()

    def _safe_refresh(self) -> None:
        try:
            self.refresh()
        except Exception as exc:  # e.g. the ledger was closed; show it, never raise into the recorder
            self.table.value = f"<i>usage unavailable: {type(exc).__name__}</i>"

    def close(self) -> None:
        """Stop listening to the ledger and close the widget."""
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None
        with self._throttle:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        super().close()
