"""Model Studio's Batch API from a notebook: ``batch()`` sends many prompts at half price, ``BatchJob`` follows them.

``batch(items, model=...)`` checks every row like ``chat()``, writes the JSONL input (split where
the service's per-file limits require), uploads it and creates the job(s) through the session's
``openai`` client, and records each job in the ledger database at once: ``BatchJob.attach(id)``
resumes it in a new kernel and ``batch_jobs()`` lists them. ``BatchJob.results()`` reads each row's
answer (or error) in input order from the downloaded result files, and records the usage once at
the batch price. ``qwen-nb batch ...`` does the same from a terminal.
"""

from __future__ import annotations

from qwen_nb._batch._job import BatchJob, BatchResults, JobTable, list_jobs, submit

#: ``q.batch(items, model=...)``: see ``submit``
batch = submit
#: ``q.batch_jobs()``: see ``list_jobs``
batch_jobs = list_jobs

__all__ = ["BatchJob", "BatchResults", "JobTable", "batch", "batch_jobs", "list_jobs", "submit"]
