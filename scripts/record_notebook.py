"""Record a jupytext tutorial (``notebooks/NN_name.py``) through the recording proxy, emulator as the upstream.

Writes ``notebooks/NN_name.ipynb`` with its outputs and ``notebooks/NN_name.cassettes/`` with the
calls; ``pytest --nbval --qwen-replay notebooks/NN_name.ipynb`` then replays it with no key.
A real recording would run ``qwen-nb record -- jupyter nbconvert --execute ...`` with a key; this
script stands the local emulator in for the service so the tutorial is reproducible offline.

    python scripts/record_notebook.py 11_record_and_replay
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


def _builder():
    spec = importlib.util.spec_from_file_location("build_notebooks", ROOT / "scripts" / "build_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the notebook's name, e.g. 11_record_and_replay")
    args = parser.parse_args(argv)
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    from qwen_nb.emulator import Emulator
    from qwen_nb.recorder import RecordingProxy, cassette_dir, profile_routes, record_env

    builder = _builder()
    source = NOTEBOOKS / f"{args.name}.py"
    target = NOTEBOOKS / f"{args.name}.ipynb"
    nb = jupytext.read(source)
    builder.clean_environment()
    for var in [v for v in os.environ if v.startswith(("DASHSCOPE_", "OPENAI_"))]:
        del os.environ[var]
    os.environ["QWEN_NB_CONFIG"] = os.devnull
    with Emulator() as emu:
        env = {"DASHSCOPE_API_KEY": emu.key()}
        upstreams, routes = profile_routes(upstream=f"{emu.url}/ap-southeast-1", env=env)
        folder = cassette_dir(target)
        with RecordingProxy(folder, upstreams, routes,
                            command=f"jupyter nbconvert --to notebook --execute --inplace {target.name}") as proxy:
            os.environ.update(env)
            os.environ.update(record_env(proxy.url, routes))
            os.environ["QWEN_NB_LEDGER"] = ":memory:"
            try:
                NotebookClient(nb, kernel_name=builder.KERNEL, timeout=builder.CELL_TIMEOUT,
                               resources={"metadata": {"path": str(NOTEBOOKS)}}, record_timing=False,
                               store_widget_state=False, coalesce_streams=True).execute()
            finally:
                for var in list(env) + list(record_env(proxy.url, routes)) + ["QWEN_NB_LEDGER"]:
                    os.environ.pop(var, None)
        n = len(proxy.cassette.interactions)
    builder.stabilize(nb)
    nbformat.validate(nb)
    nbformat.write(nb, target)
    builder.check_keys(target)
    print(f"{target.relative_to(ROOT)}: {len(nb.cells)} cells; {folder.relative_to(ROOT)}: {n} calls")
    return 0


if __name__ == "__main__":
    sys.exit(main())
