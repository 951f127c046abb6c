"""Regions: the ``Region`` type with its base URLs for both APIs, the table built from the service facts, and lookups.

Pure data and lookups, no I/O. A region's key only works on that region's hosts; the
shared hosts (``qwen_nb.facts.REGION_FACTS``) are the default, and the workspace host
(``https://{workspace}.{region}.maas.aliyuncs.com``) is used when a profile carries a
workspace id. A session may be given another table (a local emulator's, or one with a
proxy's hosts): every region of it has the same shape.
"""

from __future__ import annotations

import difflib
import html
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qwen_nb import facts
from qwen_nb.errors import InputError

COMPATIBLE_PATH = facts.COMPATIBLE_PATH
NATIVE_PATH = facts.NATIVE_PATH
WORKSPACE_GATEWAY = facts.WORKSPACE_HOST


@dataclass(frozen=True)
class Region:
    """One Model Studio region and the hosts that serve it."""

    id: str
    label: str
    host: str
    #: ``str.format`` template for the workspace-scoped gateway host
    gateway_template: str = WORKSPACE_GATEWAY
    #: currency the region bills in
    currency: str = "USD"

    def gateway(self, workspace: str | None = None) -> str:
        """The host to call: the workspace gateway if a workspace is given, else the shared one."""
        if workspace:
            return self.gateway_template.format(workspace=workspace, region=self.id)
        if not self.host:
            raise InputError(
                f"{self.label} [{self.id}] has no shared host: calls go to a workspace's own host.",
                fix="Give the profile its workspace id (QWEN_NB_<NAME>_WORKSPACE=llm-..., shown on the console's "
                "Workspaces page), or add_profile(..., workspace='llm-...').",
            )
        return self.host

    def compatible_base(self, workspace: str | None = None) -> str:
        """Base URL for the ``openai`` SDK (OpenAI-compatible protocol)."""
        return self.gateway(workspace) + COMPATIBLE_PATH

    def native_base(self, workspace: str | None = None) -> str:
        """Base URL for the ``dashscope`` SDK (native protocol)."""
        return self.gateway(workspace) + NATIVE_PATH

    def base_url(self, api: str, workspace: str | None = None) -> str:
        """Base URL for ``api`` (``"openai"`` or ``"dashscope"``)."""
        fact = facts.APIS.get(api)
        if fact is None:
            raise InputError(f"Unknown api {api!r}.", fix='Use api="openai" or api="dashscope".')
        return self.gateway(workspace) + fact.path


class RegionTable(dict[str, Region]):
    """Region id -> ``Region``, in order, shown as a table in a notebook.

    What ``qwen_nb.regions()`` (the service's regions) and ``Session.regions()`` (the hosts a
    session calls: the service's, an emulator's or a proxy's) both return. A copy: changing it
    changes no session.
    """

    def __init__(self, regions: Any = ()) -> None:
        items = list(regions.values()) if isinstance(regions, Mapping) else list(regions)
        for r in items:
            if not isinstance(r, Region):
                raise InputError(f"A region table holds Region objects, got {type(r).__name__}.")
        super().__init__((r.id, r) for r in items)

    def __str__(self) -> str:
        width = max([len(rid) for rid in self] + [2])
        return "\n".join(f"{r.id:<{width}}  {r.label}  {r.host}" for r in self.values())

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{html.escape(r.id)}</td><td>{html.escape(r.label)}</td><td>{html.escape(r.host)}"
                       f"</td><td>{r.currency}</td></tr>" for r in self.values())
        return ("<table><thead><tr><th style='text-align:left'>region</th><th style='text-align:left'>label</th>"
                f"<th style='text-align:left'>shared host</th><th>currency</th></tr></thead><tbody>{rows}</tbody>"
                "</table>")


REGIONS: dict[str, Region] = {
    r.id: Region(r.id, r.label, r.host, currency=r.currency) for r in facts.REGION_FACTS
}

DEFAULT_REGION = facts.DEFAULT_REGION

#: Names people type for a region, mapped to its id.
ALIASES = {alias: r.id for r in facts.REGION_FACTS for alias in r.aliases}


def regions() -> RegionTable:
    """The service's regions, Singapore first."""
    return RegionTable(REGIONS)


def get_region(region: str | Region, catalog: Mapping[str, Region] | RegionTable | None = None) -> Region:
    """Look a region up by id, alias or label; raise a clear ``InputError`` if unknown."""
    if isinstance(region, Region):
        return region
    table = REGIONS if catalog is None else catalog
    if not isinstance(region, str) or not region.strip():
        raise InputError(
            f"Region must be a region id string, got {region!r}.",
            fix=f"Use one of: {', '.join(table)}.",
        )
    key = region.strip().lower()
    key = ALIASES.get(key.replace(" ", "-").replace("_", "-"), key)
    if key in table:
        return table[key]
    for r in table.values():
        if r.label.lower().startswith(key):
            return r
    close = difflib.get_close_matches(key, list(table) + list(ALIASES), n=1)
    hint = f" Did you mean {ALIASES.get(close[0], close[0])!r}?" if close else ""
    raise InputError(f"Unknown region {region!r}.{hint}", fix=f"Use one of: {', '.join(table)}.")
