"""The tutorials' setup: which of your profiles play "default workspace" and "sub-workspace", said plainly.

``q.tutorial_setup()`` replaces the profile-picking cell the notebooks used to repeat. It
connects (or reuses the default session), picks

* ``home``: the default workspace's profile (``DASHSCOPE_API_KEY``, profile ``default``), if any;
* ``sub``: a sub-workspace's profile (a named ``QWEN_NB_<NAME>_API_KEY`` profile) in the same
  region that may call ``model`` as far as its ``QWEN_NB_<NAME>_MODELS`` says, if any;
* ``profile``: the one to call with (``sub`` if there is one, else ``home``),

and prints what a learner with this setup will see: a default key only, a default key plus a
sub-workspace key, a sub-workspace key alone, or the local emulator's demo workspaces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from qwen_nb._pipeline import base_url_for
from qwen_nb._profiles import Profile
from qwen_nb.facts import DOCS
from qwen_nb.session import Session

DEFAULT_NAME = "default"


@dataclass
class Tutorial:
    """The profiles a tutorial uses, and what this setup means for the lessons."""

    session: Session
    #: the default workspace's profile (may call every model of the account in its region), or None
    home: Profile | None
    #: a sub-workspace's profile (may call only the models granted to its workspace), or None
    sub: Profile | None
    #: the profile lessons call with: ``sub`` if there is one, else ``home``
    profile: Profile
    on_emulator: bool
    notes: list[str] = field(default_factory=list)

    @property
    def s(self) -> Session:
        """The session (short name for notebook cells)."""
        return self.session

    @property
    def setup(self) -> str:
        """``"emulator"``, ``"default+sub"``, ``"default-only"`` or ``"sub-only"``."""
        if self.on_emulator:
            return "emulator"
        if self.home and self.sub:
            return "default+sub"
        return "default-only" if self.home else "sub-only"

    def base_url(self, profile: Profile | str | None = None, api: str = "openai") -> str:
        """The base URL ``profile``'s calls on ``api`` go to (its workspace host when it has a workspace id)."""
        prof = self.session.get_profile(profile or self.profile)
        return base_url_for(prof, self.session.region(prof.name), api)

    def service_url(self, profile: Profile | str | None = None, api: str = "openai") -> str:
        """The service's base URL for ``profile`` on ``api`` (its workspace host when it has a workspace id),
        whatever host this session really talks to (the local emulator, a proxy)."""
        from qwen_nb._regions import get_region

        prof = self.session.get_profile(profile or self.profile)
        return get_region(prof.region).base_url(api, prof.workspace)

    def for_snippet(self, profile: Profile | str | None = None) -> Profile:
        """``profile`` as the service knows it, for ``q.snippet(profile=...)``: the service's own URLs
        (its workspace host when it has a workspace id), never a local emulator or proxy URL, and no key
        (a snippet reads it from the environment)."""
        from dataclasses import replace

        prof = self.session.get_profile(profile or self.profile)
        return replace(prof, key="", base_url=None, source="environment")

    def account_profile(self) -> Profile | None:
        """The default workspace's key aimed at the sub-workspace's host, for changing its grants.

        None without both a default and a sub-workspace profile (with a workspace id).
        """
        if not (self.home and self.sub and self.sub.workspace):
            return None
        return self.session.add_profile("account", self.home.key, region=self.sub.region,
                                        workspace=self.sub.workspace, base_url=self.sub.base_url)

    def __str__(self) -> str:
        return "\n".join(self.notes)

    def __repr__(self) -> str:
        return (f"Tutorial(setup={self.setup!r}, home={self.home.name if self.home else None!r}, "
                f"sub={self.sub.name if self.sub else None!r}, profile={self.profile.name!r})")


def _pick_sub(profiles: list[Profile], home: Profile | None, model: str) -> Profile | None:
    named = [p for p in profiles if p.name != DEFAULT_NAME and (home is None or p.key != home.key)]
    if home is not None:
        named = [p for p in named if p.region == home.region]
    fits = [p for p in named if p.models is None or model in p.models]
    return (fits or named or [None])[0]  # type: ignore[list-item]


def tutorial_setup(model: str = "qwen-plus", *, session: Session | None = None, quiet: bool = False) -> Tutorial:
    """Pick the tutorial's profiles from the session (``q.connect()``'s if none given) and say what they mean."""
    if session is None:
        from qwen_nb._default import default_session

        session = default_session()
    profiles = session.profiles()
    home = next((p for p in profiles if p.name == DEFAULT_NAME), None)
    sub = _pick_sub(profiles, home, model)
    profile = sub or home or session.get_profile()
    on_emu = bool(session.on_emulator)
    notes: list[str] = []
    if on_emu:
        notes.append("Running on the local emulator (no key found): its demo workspaces stand in for yours. "
                     "Answers are canned, nothing leaves this machine, nothing is billed.")
    else:
        notes.append("Running on Alibaba Cloud Model Studio: calls are billed to the workspace of the key used.")
    if home is not None:
        notes.append(f"default workspace: profile {home.name!r} ({home.region}, key {home.masked_key}) "
                     "- may call every model of the account in its region.")
    if sub is not None:
        ws = sub.workspace or "workspace id not set"
        notes.append(f"sub-workspace:     profile {sub.name!r} ({sub.region}, {ws}, key {sub.masked_key}) "
                     "- may call only the models granted to its workspace.")
    if home is not None and sub is None:
        notes.append("No sub-workspace key is configured (notebook 01 shows how to add one): the lessons use the "
                     "default workspace's key instead. It may call every model, so where a sub-workspace key "
                     "would be refused (403 Model.AccessDenied) you will see the call answered; the text says "
                     "what a sub-workspace key would get.")
    if home is None:
        notes.append("No default-workspace key is configured: the lessons use the sub-workspace's key alone. "
                     "Comparisons with the default workspace and granting models (which needs the Alibaba "
                     "Cloud account) are shown but skipped.")
    notes.append(f"Lessons call with profile {profile.name!r}.")
    tut = Tutorial(session, home, sub, profile, on_emu, notes)
    if not quiet:
        print(tut)
    return tut


class Links:
    """The service's own pages on some topics, as a Markdown list (``qwen_nb.facts.DOCS``)."""

    def __init__(self, topics: tuple[str, ...]) -> None:
        unknown = [t for t in topics if t not in DOCS]
        if unknown:
            from qwen_nb.errors import InputError

            raise InputError(f"Unknown documentation topic(s) {unknown}.", fix=f"Known: {', '.join(DOCS)}.")
        self.topics = topics or tuple(DOCS)

    def _repr_markdown_(self) -> str:
        return "\n".join(f"* [{DOCS[t][0]}]({DOCS[t][1]})" for t in self.topics)

    def __str__(self) -> str:
        return "\n".join(f"{DOCS[t][0]}: {DOCS[t][1]}" for t in self.topics)

    __repr__ = __str__


def links(*topics: str) -> Any:
    """The Model Studio pages on ``topics`` (keys of ``qwen_nb.facts.DOCS``; none: all) as a Markdown list."""
    return Links(topics)


__all__ = ["Links", "Tutorial", "links", "tutorial_setup"]
