"""Region, profile and model pickers and the API toggle.

Each picker is an ordinary ipywidgets control (a ``Dropdown`` or ``ToggleButtons`` subclass
with the stock frontend model), usable alone or linked:

    region = RegionPicker(session)
    profile = ProfilePicker(session, region=region)    # choosing a profile sets its region
    model = ModelPicker(session, profile=profile)      # lists that profile's models

The model list is fetched in a background thread (the kernel never waits on it) and cached
on the session (``Session.list_models``, one cache for every view); until it arrives, and
when it cannot be fetched, the catalog's models for the profile's region are shown. Models
the workspace is known not to be granted (its grants list, or a call refused in this
session: ``Session.not_granted``) are listed after the granted ones, under a heading
(``── not granted to team-a ──``, which cannot be chosen), and labelled ``(not granted)``.
The region picker offers the regions the session has profiles for. The pickers follow the
session: a profile added or removed (``KeyEntry``, ``add_profile``) shows up at once.

Each picker has a fixed width (at most the row's), so a long label never pushes its
neighbours aside; rows of pickers wrap on narrow screens.

Replacing a picker's options never passes its value through a choice nobody made: while
``replace_options`` runs, ``picker.updating`` is True and linked views ignore the changes
they see (``is_transient(change)``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
from traitlets import Unicode

from qwen_nb import catalog, facts
from qwen_nb._regions import DEFAULT_REGION, get_region, regions
from qwen_nb._secrets import scrub
from qwen_nb.widgets._common import region_label, resolve_session

if TYPE_CHECKING:
    from qwen_nb._profiles import Profile
    from qwen_nb.session import Session

NOT_GRANTED = "  (not granted)"
#: the value of the heading option above the not-granted models (choosing it keeps the previous model)
HEADING = "\u2063not-granted"
_LABEL = {"description_width": "4.5em"}


def _layout(width: str) -> widgets.Layout:
    return widgets.Layout(width=width, max_width="100%", flex="0 1 auto", min_width="12em")


def is_transient(change: Mapping[str, Any]) -> bool:
    """True for a value change made while a picker replaces its options (not a user's choice; ignore it)."""
    return bool(getattr(change.get("owner"), "updating", False))


class _Picker(widgets.Dropdown):
    """A ``Dropdown`` whose options can be replaced without passing through a choice nobody made."""

    #: True while ``replace_options`` runs: value changes seen meanwhile are transient (``is_transient``)
    updating = False
    value: Any  # the Dropdown trait (an annotation only, for type checkers)

    def replace_options(self, options: list[tuple[str, str]], value: str | None) -> None:
        """Replace the options and select ``value`` (else the first option) in one step.

        A plain ``options =`` assignment makes ipywidgets select the first option, which would
        fire value observers (and linked pickers) with a transient choice. Here the selection
        is cleared first (ipywidgets then leaves it cleared), the options are replaced, and the
        choice is made: observers see ``old -> None -> new``, the ``None`` flagged as transient
        (``updating``), and nothing but that transient when the choice stays the same. The
        frontend gets one state update.
        """
        values = [v for _, v in options]
        choice = value if value in values else (values[0] if values else None)
        old = self.value
        with self.hold_sync():
            self.updating = True
            try:
                self.index = None
                self.options = options
                if choice == old:  # the same choice: restored, not made
                    self.value = choice
            finally:
                self.updating = False
            if choice != old:
                self.value = choice


class RegionPicker(_Picker):
    """A dropdown of the Model Studio regions the session has profiles for (value: the region id).

    With no profile at all every region is offered. ``all_regions=True`` always offers every region.
    """

    def __init__(self, session: Session | None = None, *, value: str | None = None, all_regions: bool = False,
                 **kwargs: Any) -> None:
        self.session = resolve_session(session)
        self.all_regions = all_regions
        if value is None:
            try:
                value = self.session.get_profile().region
            except Exception:
                value = DEFAULT_REGION
        options = self._options()
        value = get_region(value).id
        if value not in [v for _, v in options]:
            value = options[0][1]
        kwargs.setdefault("description", "Region")
        kwargs.setdefault("style", _LABEL)
        kwargs.setdefault("layout", _layout("27em"))
        super().__init__(options=options, value=value, **kwargs)
        self._unsubscribe = self.session.on_profiles_changed(self.refresh)

    def _options(self) -> list[tuple[str, str]]:
        have = {p.region for p in self.session.profiles()}
        return [(f"{r.label} · {r.id}", r.id) for r in regions().values()
                if self.all_regions or not have or r.id in have]

    def refresh(self) -> None:
        """Re-read which regions have profiles (called when a profile is added or removed)."""
        options = self._options()
        if options != list(self.options):
            self.replace_options(options, self.value)


def profile_label(profile: Profile) -> str:
    """``team-a · sk-…1a2b · Singapore (international) · ws ws-123``: the key masked."""
    label = f"{profile.name} · {profile.masked_key} · {region_label(profile.region)}"
    if profile.workspace:  # checked by Profile (``llm-…``); scrubbed all the same
        label += f" · ws {profile.workspace}"
    return scrub(label)


class ProfilePicker(_Picker):
    """A dropdown of the session's profiles by name (value: the profile name); keys shown masked.

    Linked to a ``RegionPicker`` (``region=``), choosing a profile sets the region, and
    choosing a region switches to the first profile of that region when the current
    profile belongs to another one (``note`` then says what happened).
    """

    def __init__(
        self,
        session: Session | None = None,
        *,
        region: RegionPicker | None = None,
        value: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.session = resolve_session(session)
        self.region_picker = region
        #: a short human note about the last automatic change (or a mismatch); "" if none
        self.note = ""
        kwargs.setdefault("description", "Profile")
        kwargs.setdefault("style", _LABEL)
        kwargs.setdefault("layout", _layout("30em"))
        super().__init__(options=self._options(), **kwargs)
        if value is None:
            try:
                value = self.session.get_profile().name
            except Exception:
                value = None
        if value is not None and value in self._names():
            self.value = value
        self.observe(self._on_profile, names="value")
        if region is not None:
            region.observe(self._on_region, names="value")
            self._on_profile({"new": self.value})
        self._unsubscribe = self.session.on_profiles_changed(self.refresh)

    def _names(self) -> list[str]:
        return [p.name for p in self.session.profiles()]

    def _options(self) -> list[tuple[str, str]]:
        return [(profile_label(p), p.name) for p in self.session.profiles()]

    @property
    def profile(self) -> Profile | None:
        """The selected ``Profile`` (None if the session has none)."""
        return self.session.get_profile(self.value) if self.value else None

    def refresh(self, select: str | None = None) -> None:
        """Re-read the session's profiles (done by itself after ``add_profile``); optionally select one."""
        if self.region_picker is not None:
            self.region_picker.refresh()
        self.replace_options(self._options(), select or self.value)

    def _on_profile(self, change: dict) -> None:
        name = change["new"]
        if not name or self.region_picker is None or is_transient(change):
            return
        region = self.session.get_profile(name).region
        self.note = ""
        if self.region_picker.value != region:
            if region not in [v for _, v in self.region_picker.options]:
                self.region_picker.refresh()
            self.region_picker.value = region

    def _on_region(self, change: dict) -> None:
        if is_transient(change):
            return
        region = change["new"]
        current = self.profile
        if current is None or current.region == region:
            self.note = ""
            return
        for p in self.session.profiles():
            if p.region == region:
                self.value = p.name
                self.note = f"Switched to profile {p.name!r}: keys work only in their own region."
                return
        self.note = (
            f"No profile for {region_label(region)}: profile {current.name!r} is a "
            f"{region_label(current.region)} key, and keys work only in their own region. "
            "Add a key for that region (KeyEntry), or pick another region."
        )


#: the ``ApiToggle`` value of the Responses API mode (the kind's name in ``qwen_nb.facts``)
RESPONSES = "responses"


class ApiToggle(widgets.ToggleButtons):
    """OpenAI-compatible or DashScope native protocol (value: "openai" or "dashscope", the APIs of ``facts.APIS``).

    ``responses=True`` adds a third choice, "Responses API" (value: "responses"): the
    OpenAI-compatible endpoint's Responses API, with built-in tools (the Playground's mode).
    """

    def __init__(self, session: Session | None = None, *, value: str | None = None, responses: bool = False,
                 **kwargs: Any) -> None:
        self.session = resolve_session(session)
        if value is None:
            value = getattr(self.session, "default_api", None) or "openai"
        options = [(_API_LABELS.get(a, facts.APIS[a].label), a) for a in facts.API_NAMES]
        tips = [f"{facts.APIS[a].sdk} SDK → {facts.APIS[a].path}" for a in facts.API_NAMES]
        if responses:
            options.append(("Responses API", RESPONSES))
            tips.append(f"openai SDK → {facts.COMPATIBLE_PATH}{facts.KIND_PATHS[(RESPONSES, 'openai')]}: built-in "
                        "tools (web search, code), the conversation kept by the service")
        kwargs.setdefault("description", "API")
        kwargs.setdefault("tooltips", tips)
        kwargs.setdefault("style", {"description_width": "4.5em", "button_width": "auto"})
        # may shrink (min_width 0): on a narrow screen its buttons wrap instead of overflowing
        kwargs.setdefault("layout", widgets.Layout(width="auto", max_width="100%", flex="0 1 auto", min_width="0",
                                                   flex_flow="row nowrap", align_items="center"))
        super().__init__(options=options, value=value, **kwargs)


#: shorter button labels than ``facts.APIS``' own where a toggle has little room
_API_LABELS = {"dashscope": "DashScope"}


class ModelPicker(_Picker):
    """A dropdown of the models a profile's workspace can call (value: the model id).

    ``profile`` is a ``ProfilePicker`` to follow, a profile name, or None for the session's
    default profile. ``source`` says where the list came from: "catalog" (fallback, also while
    the workspace list loads) or "workspace".

    ``kind`` (``set_kind("responses")``) lists the models of a kind beyond chat instead: those of
    ``facts.kind_models(kind, region)`` (nothing is fetched: a workspace's model list names chat
    models), grouped granted / not granted the same way; each kind remembers its own choice.
    """

    #: where the current list came from (not synced: a plain status for views and tests)
    source = Unicode("catalog")

    def __init__(
        self,
        session: Session | None = None,
        *,
        profile: ProfilePicker | str | None = None,
        value: str | None = None,
        fetch: bool = True,
        **kwargs: Any,
    ) -> None:
        self.session = resolve_session(session)
        self.profile_source = profile
        self.fetch = fetch
        #: why the workspace list could not be fetched, if it could not
        self.fetch_error: BaseException | None = None
        self._gen = 0
        self._done = threading.Event()
        self._done.set()
        self._lock = threading.Lock()
        self._show_lock = threading.RLock()
        self._ids: list[str] = []
        self._setting = False
        self._wanted = value or getattr(self.session, "default_model", None) or "qwen-plus"
        #: None for chat models, else a kind of ``facts.KIND_MODELS`` ("responses")
        self.kind: str | None = None
        self._wanted_by_kind: dict[str | None, str] = {}
        kwargs.setdefault("description", "Model")
        kwargs.setdefault("style", _LABEL)
        kwargs.setdefault("layout", _layout("22em"))
        super().__init__(options=[], **kwargs)
        self.observe(self._on_value, names="value")
        if isinstance(profile, ProfilePicker):
            profile.observe(lambda change: None if is_transient(change) else self.refresh(), names="value")
        self.refresh()
        self._unsubscribe = self.session.on_profiles_changed(self._profiles_changed)

    def _profiles_changed(self) -> None:
        if self._profile() is not None and self.session.cached_models(self.profile_name) is None:
            self.refresh()  # the profile was added or replaced: its list is fetched again

    # -- what to list ---------------------------------------------------------------
    @property
    def profile_name(self) -> str | None:
        """The profile whose models are listed."""
        src = self.profile_source
        if isinstance(src, ProfilePicker):
            return src.value
        if isinstance(src, str):
            return src
        try:
            return self.session.get_profile().name
        except Exception:
            return None

    def _profile(self) -> Profile | None:
        name = self.profile_name
        if name is None:
            return None
        try:
            return self.session.get_profile(name)
        except Exception:
            return None

    def _catalog_ids(self, region: str) -> list[str]:
        if self.kind is not None:
            return facts.kind_models(self.kind, region)
        return [m.id for m in catalog.models(region)]

    def set_kind(self, kind: str | None) -> None:
        """List chat models (None) or the models of ``kind`` ("responses"); the choice of each is kept."""
        if kind == self.kind:
            return
        if kind is not None and kind not in {m.kind for m in facts.KIND_MODELS.values()}:
            from qwen_nb.errors import InputError

            raise InputError(f"Unknown model kind {kind!r}.", fix='Use None (chat) or "responses".')
        self._wanted_by_kind[self.kind] = self._wanted
        self.kind = kind
        self._wanted = self._wanted_by_kind.get(kind) or self._wanted
        self.refresh()

    def not_granted(self) -> set[str]:
        """Models of the listed profile known not to be granted (grants list, or a refused call)."""
        prof = self._profile()
        if prof is None:
            return set()
        denied = set(self.session.not_granted(prof.name))
        if prof.models is not None:
            denied |= {m for m in self._ids if m not in prof.models}
        return denied

    def label_for(self, model: str) -> str:
        """The option label for ``model``."""
        return model + (NOT_GRANTED if model in self.not_granted() else "")

    # -- refreshing -----------------------------------------------------------------
    def refresh(self, *, force: bool = False) -> None:
        """Show the profile's models: the session's cached list or the catalog now, the workspace list when it arrives.

        ``force=True`` asks the service again (``Session.list_models(refresh=True)``).
        """
        prof = self._profile()
        with self._lock:
            self._gen += 1
            gen = self._gen
        if prof is None:
            self._show([], "catalog")
            self._done.set()
            return
        if self.kind is not None:  # models beyond chat come from the facts table, not the workspace list
            self._show(self._catalog_ids(prof.region), "catalog")
            self._done.set()
            return
        cached = None if force else self.session.cached_models(prof.name)
        if cached is not None:
            self._show(cached, "workspace")
            self._done.set()
            return
        self._show(self._catalog_ids(prof.region), "catalog")
        if not self.fetch:
            self._done.set()
            return
        self._done.clear()
        threading.Thread(
            target=self._fetch, args=(gen, prof.name, force), name="qwen-nb-models", daemon=True
        ).start()

    def _fetch(self, gen: int, name: str, force: bool) -> None:
        try:
            ids = list(self.session.list_models(name, refresh=force))
        except Exception as err:  # shown as "catalog" with the reason kept for views
            with self._show_lock:
                if gen == self._gen:
                    self.fetch_error = err
                    self._done.set()
            return
        with self._show_lock:  # check and show at once: a newer refresh wins
            if gen == self._gen:
                self.fetch_error = None
                self._show_locked(ids, "workspace")
                self._done.set()

    def wait(self, timeout: float | None = 10.0) -> bool:
        """Wait for a background model-list fetch to finish; True if none is running any more."""
        return self._done.wait(timeout)

    def relabel(self) -> None:
        """Recompute the ``(not granted)`` labels (after a refused call)."""
        self._show(list(self._ids), self.source)

    def _show(self, ids: list[str], source: str) -> None:
        with self._show_lock:
            self._show_locked(ids, source)

    def _show_locked(self, ids: list[str], source: str) -> None:
        ids = list(dict.fromkeys(ids))
        prof = self._profile()
        if prof is not None and prof.models is not None:
            # grants known: also list the region's other models, marked not granted
            ids += [m for m in self._catalog_ids(prof.region) if m not in ids]
        if not ids and self._wanted and self.kind is None:
            ids = [self._wanted]
        self._ids = ids
        denied = self.not_granted()
        granted = [m for m in ids if m not in denied]
        ordered = granted + [m for m in ids if m in denied]
        options = [(self.label_for(m), m) for m in granted]
        if len(granted) < len(ordered):
            options.append((f"── not granted to {self.profile_name} ──", HEADING))
            options += [(self.label_for(m), m) for m in ordered[len(granted):]]
        self.source = source
        if self._wanted in ordered:
            choice = self._wanted
        else:
            choice = next((m for m in ordered if m not in denied), ordered[0] if ordered else None)
        self._setting = True
        try:
            self.replace_options(options, choice)
        finally:
            self._setting = False

    def _on_value(self, change: dict) -> None:
        if change["new"] == HEADING:  # the heading is not a model: keep the previous choice
            back = change["old"] if change["old"] not in (None, HEADING) else self._wanted
            self.value = back if back in [v for _, v in self.options] else None
            return
        if not self._setting and change["new"]:
            self._wanted = change["new"]
