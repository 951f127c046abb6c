"""A ``CallRecord`` factory shared by the ledger tests."""

from __future__ import annotations

import time

from qwen_nb.ledger import CallRecord


def rec(**kw) -> CallRecord:
    """A plausible finished call; keyword arguments override any field."""
    base = dict(
        time=time.time(), profile="team-a", workspace="ws-a", region="ap-southeast-1", api="openai",
        model="qwen-plus", input_tokens=100, output_tokens=50, reasoning_tokens=0, latency=0.2,
        request_id="req-1", status="ok", error_code=None, attempts=1, cost=0.001, currency="USD",
    )
    base.update(kw)
    return CallRecord(**base)
