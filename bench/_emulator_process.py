"""The emulator in a child process, as the real service is: what the judged benchmarks call."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from qwen_nb.emulator.config import default_profiles
from qwen_nb.emulator.hosts import emulator_regions


class EmulatorProcess:
    """The emulator in a child process (``python -m qwen_nb.cli emulator --port 0``), like the real service.

    Offers what the scenarios use of an ``Emulator``: ``url``, ``key()``, ``base_url()``,
    ``profiles()``, ``regions()``. Started when made (waits until it answers); ``stop()`` ends it.
    """

    def __init__(self, timeout: float = 30.0) -> None:
        self._log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)  # noqa: SIM115
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "qwen_nb.cli", "emulator", "--port", "0"],
                                     stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        url = None
        while url is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the emulator process did not start: {Path(self._log.name).read_text()[-500:]}")
            m = re.search(r"on (http://127\.0\.0\.1:\d+)", Path(self._log.name).read_text())
            url = m.group(1) if m else None
            if url is None:
                time.sleep(0.05)
        self.url = url
        while True:  # it printed its URL once listening; make sure it answers
            try:
                with urllib.request.urlopen(url + "/_emulator/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the emulator process does not answer") from None
                time.sleep(0.05)
        self._profiles = default_profiles(url)
        self._regions = emulator_regions(url)

    def key(self, workspace: str = "default") -> str:
        return self._profiles[workspace].key

    def base_url(self, region: str, api: str, workspace: str | None = None) -> str:
        return self._regions[region].base_url(api, workspace)

    def profiles(self) -> dict[str, Any]:
        return dict(self._profiles)

    def regions(self) -> dict[str, Any]:
        return dict(self._regions)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # the CLI stops cleanly on Ctrl-C
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        Path(self._log.name).unlink(missing_ok=True)

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
