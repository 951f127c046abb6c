"""How every benchmark prints its figures: one JSON object for run_all.py, or a plain table.

A row is ``{"figure", "value", "unit", "baseline"?, "baseline_label"?, "target"?, "ok"?}``
(see run_all.py).
"""

from __future__ import annotations

import json


def emit(name: str, rows: list[dict], as_json: bool) -> None:
    """Print ``rows`` of benchmark ``name``: JSON on one line, or an aligned table with ratios."""
    if as_json:
        print(json.dumps({"name": name, "rows": rows}))
        return
    width = max(len(r["figure"]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>12}  {'unit':<8}  {'ratio':>7}  {'target':<10}  met  baseline")
    for r in rows:
        base = r.get("baseline")
        ratio = f"{r['value'] / base:.3f}x" if isinstance(base, (int, float)) and base else ""
        met = {True: "ok", False: "NO"}.get(r.get("ok"), "")
        label = f"{base:g} ({r.get('baseline_label', '')})" if base is not None else r.get("baseline_label", "")
        print(f"{r['figure']:<{width}}  {r['value']:>12.4g}  {r.get('unit', ''):<8}  {ratio:>7}  "
              f"{r.get('target', ''):<10}  {met:<3}  {label}")
