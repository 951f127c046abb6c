"""Shared fixtures: one emulator per test session, a fresh Session per test."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def emulator():
    """A local Model Studio emulator on a free loopback port, pacing off."""
    from qwen_nb.emulator import Emulator

    with Emulator() as emu:
        yield emu


@pytest.fixture
def emu(emulator):
    """The shared emulator, with faults and pacing reset before and after the test."""
    emulator.reset()
    yield emulator
    emulator.reset()


@pytest.fixture
def session(emu):
    """A Session over the emulator's demo workspaces, with an in-memory ledger."""
    from qwen_nb.ledger import Ledger
    from qwen_nb.session import Session

    s = Session(emu.profiles(), regions=emu.regions(), ledger=Ledger(":memory:"), max_retries=2)
    yield s
    s.close()


@pytest.fixture
def led():
    """An in-memory usage ledger."""
    from qwen_nb.ledger import Ledger

    with Ledger(":memory:") as ledger:
        yield ledger
