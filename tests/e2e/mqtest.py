"""Helpers shared by the end-to-end scripts in tests/e2e/ (run by /usr/bin/python3, which has
Debian's python3-onnx and numpy).

Each script takes `--exe PATH` (meson passes the built binary), finds the project root from its
own location and the real-model corpus at ROOT/../shared/models, and exits 0 (pass), 1 (fail)
or 77 (skip, which meson reports as SKIP)."""

import argparse
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.normpath(os.path.join(ROOT, '..', 'shared', 'models'))
BACKEND_DATA = '/usr/share/libonnx-testdata/data'
RUN_MODEL_JS = os.path.join(ROOT, 'tests', 'ort', 'run_model.js')
EXIT_SKIP = 77

# Models of the corpus with calib/ and eval/ sample sets.
CORPUS = ['mnist8', 'squeezenet', 'super_resolution', 'ultraface', 'fastestdet', 'silero_vad']


def arg_parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument('--exe', default=os.environ.get('MQ_EXE', os.path.join(ROOT, 'build', 'onnx-monoquant')),
                   help='onnx-monoquant binary (default: $MQ_EXE or build/onnx-monoquant)')
    return p


def skip(message):
    print(f'SKIP: {message}')
    sys.exit(EXIT_SKIP)


def require_exe(path):
    if not os.access(path, os.X_OK):
        print(f'FAIL: {path} is not an executable; build first (tools/setup)')
        sys.exit(1)
    return os.path.abspath(path)


def corpus_or_skip():
    if not os.path.isdir(MODELS):
        skip(f'real-model corpus not found at {MODELS} (it ships beside the project, not in it)')
    return MODELS


def natural_key(name):
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', name)]


def sample_sets(folder):
    """Names of the test_data_set_N folders in folder, in natural order."""
    if not os.path.isdir(folder):
        return []
    return sorted((d for d in os.listdir(folder)
                   if re.fullmatch(r'test_data_set_\d+', d) and os.path.isdir(os.path.join(folder, d))),
                  key=natural_key)


def run(cmd, timeout=None, env=None):
    """Runs cmd; returns CompletedProcess with text stdout/stderr. A timeout is a result, not an
    exception, so one slow case cannot take a whole table down."""
    try:
        return subprocess.run(cmd, capture_output=True, text=True, errors='replace',
                              timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, -9, e.stdout or '', f'timed out after {timeout} s')


def ort_available():
    return os.path.isdir(os.path.join(ROOT, 'node_modules', 'onnxruntime-node'))


def signal_name(rc):
    """'SIGSEGV' for a process killed by a signal (negative rc), else None."""
    if rc is None or rc >= 0:
        return None
    import signal
    try:
        return signal.Signals(-rc).name
    except ValueError:
        return f'signal {-rc}'
