"""Record Model Studio calls once through a local proxy and replay them offline: cassettes beside notebooks.

``qwen-nb record -- COMMAND`` (or ``pytest --nbval --qwen-record``) stores what the service
answered; ``pytest --nbval --qwen-replay`` and ``qwen-nb emulator --replay DIR`` answer from
the cassette with no key and no network. See ``qwen_nb.recorder.cassette`` for the format.
"""

from __future__ import annotations

from qwen_nb.recorder.cassette import CASSETTE_SUFFIX, Cassette, Interaction, cassette_dir, redact
from qwen_nb.recorder.proxy import MISS_CODE, MISS_STATUS, RecordingProxy, ReplayServer
from qwen_nb.recorder.routes import PLACEHOLDER_KEY, profile_routes, record_env, replay_env

__all__ = [
    "CASSETTE_SUFFIX", "MISS_CODE", "MISS_STATUS", "PLACEHOLDER_KEY", "Cassette", "Interaction", "RecordingProxy",
    "ReplayServer", "cassette_dir", "profile_routes", "record_env", "redact", "replay_env",
]
