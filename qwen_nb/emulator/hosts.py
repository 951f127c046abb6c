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


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches (127.0.0.0/8, ::1, "localhost")."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def lan_address() -> str | None:
    """This machine's address on its local network (the one other machines reach it at), or None.

    Asks the routing table which source address a packet to another network would leave from
    (a UDP socket's ``connect`` sends nothing), then falls back to the host name's addresses.
    """
    import ipaddress
    import socket

    def usable(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return not (ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip.is_multicast)

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.254.254.254", 9))  # no packet is sent: only the route is looked up
            addr = s.getsockname()[0]
        if usable(addr):
            return addr
    except OSError:
        pass
    try:
        for addr in socket.gethostbyname_ex(socket.gethostname())[2]:
            if usable(addr):
                return addr
    except OSError:
        pass
    return None
