"""``Profile`` (region + workspace key [+ workspace id, base URL]), loading them from the settings, their table.

Profiles come from the settings chain (``qwen_nb._settings``: explicit > environment >
``.env`` > user config file > defaults):

* the default profile comes from the SDKs' own variables, so an existing setup
  works unchanged: ``DASHSCOPE_API_KEY``, ``DASHSCOPE_REGION``, ``DASHSCOPE_WORKSPACE``
  (and ``DASHSCOPE_BASE_URL``);
* any number of named profiles, one per sub-workspace:
  ``QWEN_NB_<NAME>_API_KEY`` (required), ``QWEN_NB_<NAME>_REGION``,
  ``QWEN_NB_<NAME>_WORKSPACE``, ``QWEN_NB_<NAME>_MODELS`` (comma-separated grants,
  if known), ``QWEN_NB_<NAME>_BUDGET`` (in the region's currency) and
  ``QWEN_NB_<NAME>_BASE_URL`` (a proxy, private gateway or replay server).
  ``<NAME>`` becomes the profile name in lower case with ``_`` turned to ``-``.
"""

from __future__ import annotations

import html
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from qwen_nb import facts
from qwen_nb._regions import DEFAULT_REGION, get_region
from qwen_nb._secrets import check_workspace, clean_key, mask_key, refuse_key, scrub
from qwen_nb._settings import Settings
from qwen_nb.errors import InputError

__all__ = ["Profile", "ProfileTable", "check_base_url", "clean_key", "load_profiles", "mask_key"]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _shared_host(region: str) -> str:
    return next((r.host for r in facts.REGION_FACTS if r.id == region), "x")


def check_base_url(url: Any, *, what: str = "base_url") -> str:
    """A host root that serves both APIs (``https://proxy.example.com/dashscope``), without a trailing API path.

    https only, or http on a loopback address (a local proxy or replay server); a URL ending
    in ``/compatible-mode/v1`` or ``/api/v1`` is accepted and cut back to its root.
    """
    if not isinstance(url, str) or not url.strip():
        raise InputError(f"{what} must be a URL string, got {url!r}.",
                         fix="Use e.g. base_url='https://proxy.example.com' (the host that serves /api/v1 and "
                         "/compatible-mode/v1).")
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InputError(f"{what} {text!r} is not an http(s) URL.",
                         fix="Use e.g. base_url='https://proxy.example.com'.")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise InputError(
            f"{what} {text!r} uses plain http to {parts.hostname}: the API key would cross the network unencrypted.",
            fix="Use https, or http only for a server on this machine (127.0.0.1, localhost).",
        )
    if parts.query or parts.fragment:
        raise InputError(f"{what} {text!r} has a query or fragment.", fix="Give the host root only.")
    for api in facts.APIS.values():
        if text.endswith(api.path):
            text = text[: -len(api.path)]
    return text


@dataclass(frozen=True)
class Profile:
    """A name, a region and a workspace's API key (never shown: see ``masked_key``)."""

    name: str
    region: str = DEFAULT_REGION
    key: str = field(default="", repr=False)
    workspace: str | None = None
    #: models this workspace was granted, if known (None: unknown / all)
    models: tuple[str, ...] | None = None
    #: spending budget in the region's currency, if any
    budget: float | None = None
    #: where its key came from: "explicit", "environment", ".env", "keyring", "colab", "command", "config file",
    #: "emulator"
    source: str = "explicit"
    #: a host root that replaces the region's hosts (proxy, private gateway, replay server)
    base_url: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError("A profile needs a non-empty name.")
        # a key typed into the wrong place is refused before it can be shown, used in a URL or sent
        refuse_key(self.name, "profile name")
        for value, field_ in ((self.region, "REGION"), (self.base_url, "BASE_URL"), (self.models, "MODELS")):
            if isinstance(value, (str, tuple, list)):
                refuse_key(value, f"{field_.lower().replace('_', ' ')} of profile {self.name!r} "
                           f"({setting_name(self.name, field_)})", profile=self.name)
        object.__setattr__(self, "region", get_region(self.region).id)
        object.__setattr__(self, "workspace", check_workspace(
            self.workspace, f"workspace id of profile {self.name!r} ({setting_name(self.name, 'WORKSPACE')})",
            profile=self.name))
        if self.key:
            object.__setattr__(self, "key", clean_key(self.key, source=f"key of profile {self.name!r}"))
        if self.base_url is not None:
            object.__setattr__(self, "base_url", check_base_url(self.base_url, what=f"base_url of {self.name!r}"))
        if not self.workspace and not self.base_url and not _shared_host(self.region):
            var = setting_name(self.name, "WORKSPACE")
            raise InputError(
                f"Profile {self.name!r} is in {get_region(self.region).label} [{self.region}], which has no shared "
                "host: its calls go to its workspace's own host, so the profile needs a workspace id.",
                fix=f"Set {var}=llm-... (console > Workspaces > Workspace Details), or add_profile(..., "
                "workspace='llm-...').",
            )

    @property
    def masked_key(self) -> str:
        """The key as it may be shown: ``sk-…1a2b``."""
        return mask_key(self.key)

    def __repr__(self) -> str:
        ws = f", workspace={self.workspace!r}" if self.workspace else ""
        url = f", base_url={self.base_url!r}" if self.base_url else ""
        return scrub(f"Profile(name={self.name!r}, region={self.region!r}, key={self.masked_key!r}{ws}{url})")

    def summary(self) -> dict:
        """A dict safe to show or save: the key masked."""
        return {
            "name": self.name,
            "region": self.region,
            "key": self.masked_key,
            "workspace": self.workspace,
            "models": ", ".join(self.models) if self.models else "all / unknown",
            "budget": self.budget,
            "source": self.source,
        }


def setting_name(profile: str, field: str) -> str:
    """The setting that holds ``field`` of ``profile``: ``DASHSCOPE_REGION``, ``QWEN_NB_TEAM_A_WORKSPACE`` ..."""
    if profile == "default":
        return {"API_KEY": facts.DEFAULT_KEY_VAR, "MODELS": "QWEN_NB_DEFAULT_MODELS",
                "BUDGET": "QWEN_NB_DEFAULT_BUDGET"}.get(field, f"DASHSCOPE_{field}")
    return f"QWEN_NB_{profile.upper().replace('-', '_')}_{field}"


def _split_models(value: str | None) -> tuple[str, ...] | None:
    if not value or value.strip() in ("", "*", "all"):
        return None
    return tuple(m.strip() for m in value.split(",") if m.strip())


def _budget(value: str | None, name: str) -> float | None:
    if value is None or not value.strip():
        return None
    refuse_key(value, f"budget of profile {name!r} ({setting_name(name, 'BUDGET')})", profile=name)
    try:
        return float(value)
    except ValueError:
        raise InputError(f"Budget of profile {name!r} is {value!r}, not a number.") from None


def load_profiles(
    env: Mapping[str, str] | None = None,
    dotenv_path: str | os.PathLike | None = None,
    *,
    use_dotenv: bool = True,
    use_stores: bool | None = None,
) -> dict[str, Profile]:
    """Profiles from the settings chain: explicit > environment > ``.env`` > secret stores > user config file.

    ``env`` replaces the environment (and then neither the user config file nor the keyring
    and Colab's secrets are read: a test or a tutorial sees only what it gives, unless
    ``use_stores=True``); ``dotenv_path`` defaults to the nearest ``.env``. Each profile's
    ``source`` says where its key came from ("environment", ".env", "keyring", "colab",
    "command", "config file").
    """
    conf = Settings(env=env, dotenv_path=dotenv_path, use_dotenv=use_dotenv, use_config=env is None,
                    use_stores=use_stores)
    out: dict[str, Profile] = {}
    if conf.get(facts.DEFAULT_KEY_VAR):
        out["default"] = Profile(
            "default",
            region=conf.get("DASHSCOPE_REGION") or DEFAULT_REGION,
            key=conf.lookup(facts.DEFAULT_KEY_VAR).value or "",
            workspace=conf.get("DASHSCOPE_WORKSPACE"),
            models=_split_models(conf.get("QWEN_NB_DEFAULT_MODELS")),
            budget=_budget(conf.get("QWEN_NB_DEFAULT_BUDGET"), "default"),
            source=conf.source(facts.DEFAULT_KEY_VAR),
            base_url=conf.get("DASHSCOPE_BASE_URL"),
        )
    for raw in conf.profile_names():
        name = raw.lower().replace("_", "-")
        var = f"QWEN_NB_{raw}_API_KEY"
        out[name] = Profile(
            name,
            region=conf.get(f"QWEN_NB_{raw}_REGION") or DEFAULT_REGION,
            key=conf.lookup(var).value or "",
            workspace=conf.get(f"QWEN_NB_{raw}_WORKSPACE"),
            models=_split_models(conf.get(f"QWEN_NB_{raw}_MODELS")),
            budget=_budget(conf.get(f"QWEN_NB_{raw}_BUDGET"), name),
            source=conf.source(var),
            base_url=conf.get(f"QWEN_NB_{raw}_BASE_URL"),
        )
    return out


class ProfileTable(list):
    """A list of profiles that shows as a table in a notebook (keys masked)."""

    COLUMNS = ("name", "region", "key", "workspace", "models", "budget", "source")

    def rows(self) -> list[dict[str, Any]]:
        """One dict per profile, safe to show (``Profile.summary()``)."""
        return [p.summary() for p in self]

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{c}</th>" for c in self.COLUMNS)
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(r[c] if r[c] is not None else '—'))}</td>"
                             for c in self.COLUMNS) + "</tr>"
            for r in self.rows()
        )
        if not self:
            body = f"<tr><td colspan='{len(self.COLUMNS)}'>no profiles</td></tr>"
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def _repr_markdown_(self) -> str:
        lines = ["| " + " | ".join(self.COLUMNS) + " |", "|" + "---|" * len(self.COLUMNS)]
        for r in self.rows():
            lines.append("| " + " | ".join(str(r[c] if r[c] is not None else "—") for c in self.COLUMNS) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        rows = [[str(r[c] if r[c] is not None else "-") for c in self.COLUMNS] for r in self.rows()]
        widths = [max([len(c)] + [len(row[i]) for row in rows]) for i, c in enumerate(self.COLUMNS)]
        fmt = "  ".join(f"{{:<{w}}}" for w in widths)
        return "\n".join([fmt.format(*self.COLUMNS)] + [fmt.format(*row) for row in rows])
