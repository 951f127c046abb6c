"""The region catalog: where each Model Studio region is served, on both protocols.

Pure data and lookups, no I/O. A region's key only works on that region's
gateway; the legacy shared gateways below are the default, and the
workspace-scoped gateway (``https://{workspace}.{region}.maas.aliyuncs.com``)
is used when a profile carries a workspace id.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from qwen_nb.errors import InputError

COMPATIBLE_PATH = "/compatible-mode/v1"
NATIVE_PATH = "/api/v1"
WORKSPACE_GATEWAY = "https://{workspace}.{region}.maas.aliyuncs.com"


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
        return self.host

    def compatible_base(self, workspace: str | None = None) -> str:
        """Base URL for the ``openai`` SDK (OpenAI-compatible protocol)."""
        return self.gateway(workspace) + COMPATIBLE_PATH

    def native_base(self, workspace: str | None = None) -> str:
        """Base URL for the ``dashscope`` SDK (native protocol)."""
        return self.gateway(workspace) + NATIVE_PATH

    def base_url(self, api: str, workspace: str | None = None) -> str:
        """Base URL for ``api`` (``"openai"`` or ``"dashscope"``)."""
        if api == "openai":
            return self.compatible_base(workspace)
        if api == "dashscope":
            return self.native_base(workspace)
        raise InputError(f"Unknown api {api!r}.", fix='Use api="openai" or api="dashscope".')


_INTL = "https://dashscope-intl.aliyuncs.com"

REGIONS: dict[str, Region] = {
    r.id: r
    for r in (
        Region("ap-southeast-1", "Singapore (international)", _INTL),
        Region("cn-beijing", "Beijing (China mainland)", "https://dashscope.aliyuncs.com", currency="CNY"),
        Region("cn-hongkong", "Hong Kong", "https://cn-hongkong.dashscope.aliyuncs.com"),
        Region("us-east-1", "US (Virginia)", _INTL),
        Region("eu-central-1", "Germany (Frankfurt)", _INTL),
        Region("ap-northeast-1", "Japan (Tokyo)", _INTL),
    )
}

DEFAULT_REGION = "ap-southeast-1"

#: Names people type for a region, mapped to its id.
ALIASES = {
    "singapore": "ap-southeast-1",
    "intl": "ap-southeast-1",
    "international": "ap-southeast-1",
    "beijing": "cn-beijing",
    "china": "cn-beijing",
    "cn": "cn-beijing",
    "hongkong": "cn-hongkong",
    "hong-kong": "cn-hongkong",
    "hk": "cn-hongkong",
    "us": "us-east-1",
    "virginia": "us-east-1",
    "frankfurt": "eu-central-1",
    "germany": "eu-central-1",
    "eu": "eu-central-1",
    "tokyo": "ap-northeast-1",
    "japan": "ap-northeast-1",
}


def regions() -> list[Region]:
    """All known regions, Singapore first."""
    return list(REGIONS.values())


def get_region(region: str | Region, catalog: dict[str, Region] | None = None) -> Region:
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


def emulator_regions(root: str) -> dict[str, Region]:
    """The same regions, each served by a local emulator at ``{root}/{region id}``.

    The workspace gateway becomes ``{root}/{region id}/ws/{workspace}``.
    """
    root = root.rstrip("/")
    return {
        rid: Region(
            r.id,
            r.label + " — local emulator",
            f"{root}/{rid}",
            gateway_template=root + "/{region}/ws/{workspace}",
            currency=r.currency,
        )
        for rid, r in REGIONS.items()
    }
