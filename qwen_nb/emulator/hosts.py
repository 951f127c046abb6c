"""The emulator's hosts: every Model Studio region served under one local root URL.

A session talks to the emulator when it is given this region table (``Session(...,
regions=emulator_regions(url))``): the core never needs to know the emulator's URL scheme.
"""

from __future__ import annotations

from qwen_nb._regions import REGIONS, Region, RegionTable


def emulator_regions(root: str) -> RegionTable:
    """The same regions, each served by a local emulator at ``{root}/{region id}``.

    The workspace gateway becomes ``{root}/{region id}/ws/{workspace}``.
    """
    root = root.rstrip("/")
    return RegionTable(
        Region(
            r.id,
            r.label + " — local emulator",
            f"{root}/{rid}" if r.host else "",  # like the service: no shared host where it has none
            gateway_template=root + "/{region}/ws/{workspace}",
            currency=r.currency,
        )
        for rid, r in REGIONS.items()
    )
