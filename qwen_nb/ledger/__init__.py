"""The usage ledger: one record per call, in SQLite, and cost reports per workspace, profile, model or day.

Every logical call made through qwen-nb (helpers, widgets, magics, batch runs) is
recorded once by the ``Session``: a retried call is one record carrying its
number of attempts, a failed call is one record with status ``"error"``, a
stream closed early is ``"interrupted"`` with the usage received so far.

Storage: SQLite in WAL mode with ``synchronous=NORMAL``; each ``record()`` is
its own committed transaction, so a process killed at any moment leaves every
record whose ``record()`` had returned. Several processes may share one file:
a lock held by another process is waited for, never a reason to drop a call.
The default file is ``platformdirs.user_data_dir("qwen-nb")/usage.sqlite``
(``$QWEN_NB_LEDGER`` overrides it; ``":memory:"`` keeps nothing). A session on
the local emulator does not use that file: its demo calls go to
``$QWEN_NB_LEDGER`` if set, else to an in-memory ledger, so fake usage never
mixes with real spend. The schema is versioned with ``PRAGMA user_version`` and
migrated forward on open; a SQLite file of another program is refused untouched.

Costs are summed per currency (USD and CNY are never added together); calls
whose price is unknown are counted apart, never priced at zero.

Modules: ``_store`` (``Ledger``, ``CallRecord``), ``_schema`` (migrations),
``_paths`` (where the file is), ``_batches`` (batch jobs, kept so they outlive
the kernel), ``_report`` and ``_rows`` (``UsageReport``, ``UsageRow``),
``_render`` (text, HTML, CSV, pandas), ``_budget`` (budget warnings), ``_cli``
(``qwen-nb usage``).
"""

from __future__ import annotations

from qwen_nb.ledger._batches import BatchJobRecord, batch_job_records, save_batch_job, update_batch_job
from qwen_nb.ledger._budget import BudgetWarning
from qwen_nb.ledger._cli import cli_main
from qwen_nb.ledger._paths import ENV_LEDGER, default_path
from qwen_nb.ledger._render import OptionalDependencyError
from qwen_nb.ledger._report import GROUPINGS, UsageReport, parse_since
from qwen_nb.ledger._rows import UsageRow
from qwen_nb.ledger._schema import MIGRATIONS, SCHEMA_VERSION, migrate
from qwen_nb.ledger._store import STATUSES, CallRecord, Ledger, LedgerBusyError, new_call_id

__all__ = [
    "ENV_LEDGER",
    "GROUPINGS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STATUSES",
    "BatchJobRecord",
    "BudgetWarning",
    "CallRecord",
    "Ledger",
    "LedgerBusyError",
    "OptionalDependencyError",
    "UsageReport",
    "UsageRow",
    "batch_job_records",
    "cli_main",
    "default_path",
    "migrate",
    "new_call_id",
    "parse_since",
    "save_batch_job",
    "update_batch_job",
]
