"""Helpers shared by the e2e scripts of the model tools (tests/e2e/fp16, dequantize, compare):
sample folders, onnxruntime runs, and the comparison metrics computed the way `compare` defines
them, so each script can check the tool against an independent computation."""

import os
import shutil

import mqtest

import numpy as np
import onnx
from onnx import numpy_helper

FP16_MIN_SQNR_DB = 40.0


def light_models(models_dir):
    folder = os.path.join(models_dir, 'light')
    if not os.path.isdir(folder):
        return []
    return ['light/' + f[:-5] for f in sorted(os.listdir(folder)) if f.endswith('.onnx')]


def model_path(models_dir, name):
    if name.startswith('light/'):
        return os.path.join(models_dir, name + '.onnx')
    return os.path.join(models_dir, name, 'model.onnx')


def random_inputs(model_path_, out_dir, seed=0):
    """One sample of uniform [0, 1) inputs of each graph input's shape (symbolic dims as 1)."""
    model = onnx.load(model_path_, load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    rng = np.random.default_rng(seed)
    set_dir = os.path.join(out_dir, 'test_data_set_0')
    os.makedirs(set_dir)
    k = 0
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value if d.HasField('dim_value') and d.dim_value > 0 else 1 for d in tt.shape.dim]
        dtype = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[tt.elem_type]
        arr = rng.random(shape, dtype=np.float64).astype(dtype)
        with open(os.path.join(set_dir, f'input_{k}.pb'), 'wb') as f:
            f.write(numpy_helper.from_array(arr, vi.name).SerializeToString())
        k += 1
    return out_dir


def samples(models_dir, name, work, limit):
    """A folder with the first `limit` sample sets of the model (eval/ when it has sets, else
    calib/; random inputs for light/ models)."""
    out = os.path.join(work, name.replace('/', '_') + '-samples')
    if os.path.isdir(out):
        return out
    if name.startswith('light/'):
        return random_inputs(model_path(models_dir, name), out)
    src = os.path.join(models_dir, name, 'eval')
    if not mqtest.sample_sets(src):
        src = os.path.join(models_dir, name, 'calib')
    os.makedirs(out)
    for s in mqtest.sample_sets(src)[:limit]:
        os.symlink(os.path.join(src, s), os.path.join(out, s))
    return out


def ort_run(model, inputs, out_dir, opt_level='all', optimized=None):
    """Runs the model in onnxruntime-node; returns {output name: [array per sample]}."""
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = ['node', mqtest.RUN_MODEL_JS, model, '--inputs', inputs, '--outputs', out_dir, '--quiet',
           '--opt-level', opt_level]
    if optimized:
        cmd += ['--optimized', optimized]
    r = mqtest.run(cmd, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f'onnxruntime failed on {model}: {r.stderr.strip()[-800:]}')
    result = {}
    for s in mqtest.sample_sets(out_dir):
        d = os.path.join(out_dir, s)
        for f in sorted(os.listdir(d), key=mqtest.natural_key):
            t = onnx.load_tensor(os.path.join(d, f))
            result.setdefault(t.name, []).append(numpy_helper.to_array(t))
    return result


def ours_run(exe, model, inputs, out_dir):
    """Runs the model in our interpreter (`run --outputs --no-fuse`, the arithmetic compare uses);
    same result shape as ort_run."""
    shutil.rmtree(out_dir, ignore_errors=True)
    r = mqtest.run([exe, 'run', model, '--inputs', inputs, '--outputs', out_dir, '--no-fuse'], timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f'run failed on {model}: {r.stderr.strip()[-800:]}')
    result = {}
    for s in mqtest.sample_sets(out_dir):
        d = os.path.join(out_dir, s)
        for f in sorted(os.listdir(d), key=mqtest.natural_key):
            t = onnx.load_tensor(os.path.join(d, f))
            result.setdefault(t.name, []).append(numpy_helper.to_array(t))
    return result


def metrics(reference, test):
    """The figures `compare` reports, from lists of per-sample arrays: pooled SQNR (dB, inf when
    exact), cosine similarity, max abs error, and top-1 agreement when the output is [N, C] or
    [N, C, 1, ...] class scores (else None)."""
    a = np.concatenate([np.asarray(x, np.float64).ravel() for x in reference])
    b = np.concatenate([np.asarray(x, np.float64).ravel() for x in test])
    finite = np.isfinite(a) & np.isfinite(b)
    a, b = a[finite], b[finite]
    err = float(np.sum((b - a) ** 2))
    sig = float(np.sum(a * a))
    sqnr = float('inf') if err == 0 else (float('-inf') if sig == 0 else 10 * np.log10(sig / err))
    na, nb = np.sqrt(sig), np.sqrt(float(np.sum(b * b)))
    cosine = 1.0 if na == 0 and nb == 0 else (0.0 if na == 0 or nb == 0 else float(np.dot(a, b) / (na * nb)))
    max_abs = float(np.max(np.abs(b - a))) if a.size else 0.0
    top1 = None
    r0 = np.asarray(reference[0])
    if r0.dtype.kind == 'f' and r0.ndim >= 2 and r0.shape[1] >= 2 and all(d == 1 for d in r0.shape[2:]):
        agree = rows = 0
        for x, y in zip(reference, test):
            x = np.asarray(x, np.float64).reshape(x.shape[0], -1)
            y = np.asarray(y, np.float64).reshape(y.shape[0], -1)
            agree += int(np.sum(np.argmax(x, axis=1) == np.argmax(y, axis=1)))
            rows += x.shape[0]
        top1 = agree / rows
    return {'sqnr_db': sqnr, 'cosine': cosine, 'max_abs_error': max_abs, 'top1': top1}


def walk_nodes(graph):
    """Every node of a graph and of its subgraphs."""
    for n in graph.node:
        yield n
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from walk_nodes(a.g)
            for g in a.graphs:
                yield from walk_nodes(g)


def walk_graphs(graph):
    yield graph
    for n in graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                yield from walk_graphs(a.g)
            for g in a.graphs:
                yield from walk_graphs(g)


def checker(model):
    """Runs python3-onnx's full check where Debian's onnx 1.12 knows the IR and opset; returns
    None when fine or skipped, else the message."""
    opset = max((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')), default=0)
    if model.ir_version > 8 or opset > 17:
        return None
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # noqa: BLE001 - the checker raises several types
        return str(e)[:400]
    return None


def fmt_db(x):
    return 'inf' if x == float('inf') else f'{x:.2f}'
