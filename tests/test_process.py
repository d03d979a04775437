"""Importing tinyeffnet changes nothing; configure_process() applies the thread-pool settings.

Each check runs in a fresh interpreter, with the settings taken out of its environment first.
"""
import json
import os
import subprocess
import sys

SETTINGS = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "OPENBLAS_THREAD_TIMEOUT", "NUMBA_CACHE_DIR")


def _run(script: str, **overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env.update(overrides)
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_package_leaves_the_environment_and_numpy_alone():
    report = _run(
        "import json, os, sys\n"
        "before = dict(os.environ)\n"
        "import tinyeffnet\n"
        "numpy_loaded = 'numpy' in sys.modules\n"
        "from tinyeffnet import create_model, ops\n"
        "import tinyeffnet.train, tinyeffnet.interop, tinyeffnet.nn, tinyeffnet.analysis, tinyeffnet.cli\n"
        "create_model('efficientnetv2_tiny', num_classes=3)\n"
        "changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))\n"
        "print(json.dumps({'numpy_loaded': numpy_loaded, 'changed': changed}))\n")
    assert report["changed"] == []
    assert report["numpy_loaded"] is False          # so configure_process() after `import tinyeffnet` is in time


def test_configure_process_applies_the_defaults_and_torch_workers_get_the_users_environment():
    report = _run(
        "import json, os, tinyeffnet\n"
        "r = tinyeffnet.configure_process()\n"
        "from tinyeffnet.process import worker_environment\n"
        "torch_env = worker_environment(False, '')\n"
        "ours_env = worker_environment(True, '')\n"
        "print(json.dumps({'env': {k: os.environ.get(k) for k in r['applied']}, 'report': r,\n"
        "                  'torch': {k: torch_env.get(k) for k in r['applied']},\n"
        "                  'ours': {k: ours_env.get(k) for k in r['applied']}}))\n")
    assert report["env"]["GOMP_SPINCOUNT"] == "5000"
    assert "OMP_WAIT_POLICY" not in report["report"]["applied"]   # no longer set: it made every prange wake sleeping threads
    assert report["env"]["OPENBLAS_THREAD_TIMEOUT"] == "4"
    assert report["env"]["NUMBA_CACHE_DIR"].endswith(os.path.join("tinyeffnet", "numba"))
    assert report["report"]["too_late"] == []
    assert set(report["torch"].values()) == {None}       # PyTorch's worker keeps its own defaults
    assert report["ours"] == report["env"]


def test_a_value_the_user_set_wins():
    report = _run("import json, os, tinyeffnet\nr = tinyeffnet.configure_process()\n"
                  "print(json.dumps({'env': dict(os.environ), 'report': r}))\n",
                  OPENBLAS_THREAD_TIMEOUT="20", GOMP_SPINCOUNT="0")
    assert report["env"]["OPENBLAS_THREAD_TIMEOUT"] == "20"
    assert report["env"]["GOMP_SPINCOUNT"] == "0"
    assert report["report"]["kept"] == {"OPENBLAS_THREAD_TIMEOUT": "20", "GOMP_SPINCOUNT": "0"}


def test_a_call_after_numpy_says_what_came_too_late():
    report = _run("import json, numpy, tinyeffnet\nprint(json.dumps(tinyeffnet.configure_process()))\n")
    assert any("OPENBLAS_THREAD_TIMEOUT" in item for item in report["too_late"])
