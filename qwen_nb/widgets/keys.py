"""``KeyEntry``: add a workspace key from the notebook without the key ever entering widget state.

The key box is a ``Password`` whose value is taken out of the widget the moment it reaches
the kernel: it is kept in a plain Python attribute (never a synced trait) until "Add key",
then handed to ``Session.add_profile`` and dropped. The box never sends a key back to the
frontend (its value always serialises as ""), and does not echo it to other frontends, so
neither a live notebook nor one saved with widget state holds the key.

The workspace box works the same way (a key pasted there by mistake must not be saved
either): its value is taken out at once, checked (a key-shaped value is refused and
dropped; an id must look like ``llm-…``) and only a valid id is shown back, as the box's
placeholder. When the ``keyring`` package is importable, a "remember in the keyring"
checkbox stores the key in the OS keyring (service ``qwen-nb``, user
``QWEN_NB_<NAME>_API_KEY``), where ``load_profiles()`` finds it next time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from traitlets import Unicode

from qwen_nb._profiles import clean_key, mask_key
from qwen_nb._regions import DEFAULT_REGION, regions
from qwen_nb._secrets import check_workspace, key_var, looks_like_key
from qwen_nb._settings import keyring_available, store_in_keyring
from qwen_nb.errors import InputError, QwenNbError
from qwen_nb.widgets._common import error_panel_html, note_html, resolve_session

if TYPE_CHECKING:
    from qwen_nb._profiles import Profile
    from qwen_nb.session import Session


def _never_out(_value: str, _widget: Any) -> str:
    return ""


class KeyBox(widgets.Password):
    """A ``Password`` box whose value is never sent from the kernel (no echo, serialised as "")."""

    value = Unicode("", help="the typed key; cleared by its owner as soon as it arrives").tag(
        sync=True, echo_update=False, to_json=_never_out
    )


class WorkspaceBox(widgets.Text):
    """A ``Text`` box whose value is never sent from the kernel either (its owner takes it out at once)."""

    value = Unicode("", help="the typed workspace id; cleared by its owner as soon as it arrives").tag(
        sync=True, echo_update=False, to_json=_never_out
    )


class KeyEntry(widgets.VBox):
    """Name, region, optional workspace id and a key box; "Add key" creates a session profile.

    ``on_added(callback)`` registers ``callback(profile)`` for each profile added.
    ``submit()`` is what the button does.
    """

    def __init__(self, session: Session | None = None, *, region: str | None = None, **kwargs: Any) -> None:
        self.session = resolve_session(session)
        self._pending: str | None = None  # the key, kernel-side only
        self._callbacks: list[Callable[[Profile], Any]] = []
        #: the last profile added, and the last error (plain state for tests and views)
        self.last_profile: Profile | None = None
        self.last_error: BaseException | None = None
        self.name = widgets.Text(description="Name", placeholder="e.g. team-a")
        self.region = widgets.Dropdown(
            options=[(f"{r.label} · {r.id}", r.id) for r in regions().values()],
            value=region or DEFAULT_REGION,
            description="Region",
        )
        self._workspace: str | None = None  # the checked workspace id, kernel-side
        self._workspace_error: QwenNbError | None = None
        self.workspace = WorkspaceBox(description="Workspace", placeholder=self._WS_HINT, continuous_update=False)
        self.key = KeyBox(description="API key", placeholder="paste, then Enter or Add key", continuous_update=False)
        self.button = widgets.Button(description="Add key", button_style="primary", icon="key")
        #: "remember in the keyring" (None when the ``keyring`` package is not installed)
        self.remember: widgets.Checkbox | None = None
        if keyring_available():
            self.remember = widgets.Checkbox(value=False, description="remember in the keyring", indent=False)
        self.message = widgets.HTML()
        self.key.observe(self._take_key, names="value")
        self.workspace.observe(self._take_workspace, names="value")
        self.button.on_click(lambda _b: self.submit())
        super().__init__(
            children=[
                widgets.HBox([self.name, self.region]),
                widgets.HBox([self.workspace, self.key]),
                widgets.HBox([self.button] + ([self.remember] if self.remember is not None else [])),
                self.message,
            ],
            **kwargs,
        )

    _WS_HINT = "optional workspace id (llm-…)"

    @property
    def workspace_id(self) -> str | None:
        """The workspace id received (checked), or None."""
        return self._workspace

    def on_added(self, callback: Callable[[Profile], Any]) -> None:
        """Call ``callback(profile)`` after each profile this entry adds."""
        self._callbacks.append(callback)

    @property
    def has_key(self) -> bool:
        """True when a key was received and waits for "Add key"."""
        return bool(self._pending)

    def _take_key(self, change: dict) -> None:
        value = change["new"]
        if not value:
            return
        self._pending = value
        self.key.value = ""  # out of the widget at once
        masked = mask_key(value.strip())
        self.message.value = note_html(f"Key {masked} received (kept in the kernel only); press Add key.")

    def _take_workspace(self, change: dict) -> None:
        value = change["new"]
        if not value:
            return
        self.workspace.value = ""  # out of the widget at once, like the key
        self._workspace = self._workspace_error = None
        self.workspace.placeholder = self._WS_HINT
        try:
            self._workspace = check_workspace(value)
        except QwenNbError as err:
            self._workspace_error = err
            extra = " It was dropped; paste the key into the API key box." if looks_like_key(value) else ""
            self.message.value = error_panel_html(err) + (note_html(extra.strip(), "warn") if extra else "")
            return
        if self._workspace:
            self.workspace.placeholder = self._workspace  # a checked id only: never a key
            self.message.value = note_html(f"Workspace {self._workspace} received.")

    def submit(self) -> Profile | None:
        """Add the profile from the entered fields; returns it, or None (the message says why)."""
        if self.key.value:  # a value set without the observer (should not happen): take it now
            self._take_key({"new": self.key.value})
        key, self._pending = self._pending, None
        self.key.value = ""
        self.last_error = None
        try:
            name = self.name.value.strip()
            if not name:
                raise InputError("The profile needs a name.", fix="Type a short name, e.g. team-a, then Add key.")
            if not key:
                raise InputError(
                    "No key was entered.",
                    fix="Paste the workspace's API key (Model Studio console, API-KEY page), then Add key.",
                )
            key = clean_key(key, source="key")
            if self.workspace.value:  # set without the observer: take it now
                self._take_workspace({"new": self.workspace.value})
            if self._workspace_error is not None:  # reported once; an empty box then means "no workspace"
                bad, self._workspace_error = self._workspace_error, None
                raise bad
            profile = self.session.add_profile(name, key, region=self.region.value, workspace=self._workspace)
            if self.remember is not None and self.remember.value:
                store_in_keyring(key_var(profile.name), key)
        except QwenNbError as err:
            self.last_error = err
            self.message.value = error_panel_html(err) + note_html("The key was cleared; paste it again to retry.",
                                                                   "warn")
            return None
        finally:
            key = None
        self.last_profile = profile
        kept = ("The key is kept in the kernel and the OS keyring (" + key_var(profile.name) + ")."
                if self.remember is not None and self.remember.value else "The key is kept in the kernel only.")
        self.message.value = note_html(
            f"Added profile {profile.name!r} ({profile.masked_key}, {self.region.label.split(' · ')[0]}"
            + (f", workspace {profile.workspace}" if profile.workspace else "")
            + "). " + kept,
            "ok",
        )
        for callback in self._callbacks:
            callback(profile)
        return profile
