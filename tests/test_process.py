"""Importing tinyeffnet changes nothing; configure_process() applies the thread-pool settings.

Each check runs in a fresh interpreter, with the settings taken out of its environment first.
"""
import json
import os
import platform
import subprocess
import sys

import pytest

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
        "from tinyeffnet import machine\n"
        "from tinyeffnet.process import SPINCOUNT\n"
        "spin = SPINCOUNT['mkl' if machine.mkl_expected() else 'openblas']\n"
        "print(json.dumps({'env': {k: os.environ.get(k) for k in r['applied']}, 'report': r, 'spin': spin,\n"
        "                  'torch': {k: torch_env.get(k) for k in r['applied']},\n"
        "                  'ours': {k: ours_env.get(k) for k in r['applied']}}))\n")
    assert report["env"]["GOMP_SPINCOUNT"] == report["spin"] in ("5000", "100000")
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


_FAULTS_SCRIPT = (
    "import json, resource, sys, tinyeffnet\n"
    "report = tinyeffnet.configure_process() if sys.argv[1] == 'configure' else {}\n"
    "import numpy as np\n"
    "def faults():\n"
    "    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
    "np.ones(5 << 20)                           # 40 MiB, touched and freed: once to warm up\n"
    "before = faults()\n"
    "for _ in range(5):\n"
    "    np.ones(5 << 20)                       # 40 MiB, touched and freed, as a training step does\n"
    "print(json.dumps({'faults': faults() - before, 'malloc': report.get('malloc')}))\n")


def _faults(mode: str, **env) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS and not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT, mode], check=True, capture_output=True, text=True,
                         env={**clean, **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the malloc thresholds are glibc's")
def test_freed_activations_stay_in_the_process_instead_of_faulting_back_in():
    # 40 MiB is above glibc's largest adaptive mmap threshold (32 MiB): freed, it goes back to the OS
    # and the next allocation faults its pages in again (2,660 faults for five here; fewer than
    # 5 x 10,240 because of transparent huge pages). With configure_process's thresholds it is reused.
    default, configured = _faults("plain"), _faults("configure")
    assert configured["faults"] < 50
    assert default["faults"] > configured["faults"] + 50     # (even with huge pages always on: >= 20 per allocation)
    assert configured["malloc"] == {"M_MMAP_THRESHOLD": 64 << 20, "M_TRIM_THRESHOLD": 1 << 30}


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the malloc thresholds are glibc's")
def test_a_benchmark_worker_of_ours_gets_the_thresholds_from_its_environment():
    from tinyeffnet.process import worker_environment

    ours, peer = worker_environment(True, ""), worker_environment(False, "")
    malloc = {k: v for k, v in ours.items() if k.startswith("MALLOC_")}
    assert malloc == {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(1 << 30)}
    assert not any(k.startswith("MALLOC_") for k in peer)                  # PyTorch keeps glibc's defaults
    assert _faults("plain", **malloc)["faults"] < 50                       # no configure_process call in it


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the malloc thresholds are glibc's")
def test_the_users_own_malloc_settings_win():
    assert _faults("configure", MALLOC_TRIM_THRESHOLD_="0")["malloc"] == {}


_WARNING_SCRIPT = (
    "import json, sys, warnings\n"
    "warnings.simplefilter('always')\n"
    "with warnings.catch_warnings(record=True) as caught:\n"
    "    import tinyeffnet\n"
    "    if sys.argv[1] == 'configure':\n"
    "        tinyeffnet.configure_process()\n"
    "    import tinyeffnet.ops\n"
    "print(json.dumps([str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]))\n")


def _warnings(mode: str, **env) -> list:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS and k != "TINYEFFNET_THREADS_WARNING"}
    out = subprocess.run([sys.executable, "-c", _WARNING_SCRIPT, mode], check=True, capture_output=True, text=True,
                         env={**clean, **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_loading_the_kernels_unconfigured_warns_once_and_says_what_to_call():
    messages = _warnings("plain")
    assert len(messages) == 1 and "tinyeffnet.configure_process()" in messages[0]
    assert _warnings("configure") == []
    assert _warnings("plain", GOMP_SPINCOUNT="100") == []                  # the user chose a setting
    assert _warnings("plain", TINYEFFNET_THREADS_WARNING="0") == []        # a benchmark peer's process


def test_the_spin_time_follows_the_gemm_that_will_run(monkeypatch):
    """configure_process() picks GOMP_SPINCOUNT before numpy is imported, from machine.mkl_expected:
    the environment's half of ops/blas.py's rule."""
    from tinyeffnet import machine
    from tinyeffnet.process import SPINCOUNT, defaults

    monkeypatch.setattr(machine, "mkl_library", lambda: "/somewhere/lib/libmkl_rt.so.2")
    monkeypatch.setattr(machine.sys, "platform", "linux")
    cases = [  # (TINYEFFNET_BLAS, NUMBA_THREADING_LAYER, CPU vendor) -> MKL expected
        ("auto", None, "GenuineIntel", True), ("", None, "GenuineIntel", True),
        ("auto", "omp", "GenuineIntel", True), ("auto", "tbb", "GenuineIntel", False),
        ("auto", None, "AuthenticAMD", False), ("numpy", None, "GenuineIntel", False),
        ("mkl", None, "AuthenticAMD", True), ("nonsense", None, "GenuineIntel", False),
    ]
    for blas_choice, layer, vendor, expected in cases:
        monkeypatch.setenv("TINYEFFNET_BLAS", blas_choice)
        if layer is None:
            monkeypatch.delenv("NUMBA_THREADING_LAYER", raising=False)
        else:
            monkeypatch.setenv("NUMBA_THREADING_LAYER", layer)
        monkeypatch.setattr(machine, "cpu_vendor", lambda vendor=vendor: vendor)
        assert machine.mkl_expected() is expected, (blas_choice, layer, vendor)
        assert defaults()["GOMP_SPINCOUNT"] == SPINCOUNT["mkl" if expected else "openblas"]
    monkeypatch.setenv("TINYEFFNET_BLAS", "auto")
    monkeypatch.setattr(machine, "mkl_library", lambda: None)             # the wheel not installed
    assert machine.mkl_expected() is False


def test_the_expected_gemm_is_the_one_that_runs():
    report = _run("import json, tinyeffnet\ntinyeffnet.configure_process()\n"
                  "from tinyeffnet import machine\nexpected = machine.mkl_expected()\n"
                  "from tinyeffnet.ops import blas\n"
                  "print(json.dumps({'expected': expected, 'backend': blas.backend()}))\n")
    assert report["expected"] == (report["backend"] == "mkl"), report
