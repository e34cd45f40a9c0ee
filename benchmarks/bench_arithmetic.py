"""Benchmark: which float32 arithmetic settings give the same bits whatever instruction set the CPU offers, and
what each costs in speed.

    python benchmarks/bench_arithmetic.py [--quick] [--record]

Each setting runs the same seeded workload in a fresh child process (the settings are read when the libraries
load): training a custom network (arch3, 224 px, 250 images, 2 epochs after an untimed one on 32 that traces
the step: convolution forward and backward, dense, the optimiser), a VGG19 conv-base forward pass (random-init
weights, 224 px, 8 images), its input gradient (the Grad-CAM and guided-backprop path) and NumPy's float32 matrix
product (CAM upsampling). The child hashes every array it produced; the parent prints, per setting, which parts
are bit-identical to the pinned setting, the largest relative difference where they are not, and the time of
each part against TensorFlow's own choice ("native": Eigen's kernels on an AVX2 CPU, oneDNN's on an AVX-512 one;
the pin is oneDNN's, capped at AVX2, on every CPU).

Instruction-set caps simulate older CPUs on this one (``ONEDNN_MAX_CPU_ISA``: oneDNN never uses more than it is
allowed); a CPU offering *more* (AVX-512, AMX) cannot be simulated. ``--record`` stores the table in
``results/benchmarks.json`` (key ``arithmetic``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _pinned(**changes: str) -> dict[str, str]:
    """The pinned settings (cnnlib.arithmetic.PINNED) with ``changes``, applied by hand (mode native)."""
    from cnnlib.arithmetic import PINNED

    return {"CNNLIB_ARITHMETIC": "native", **{k: v for k, (v, _, _) in PINNED.items()}, **changes}


# name -> the child's arithmetic variables (every other pinned variable is removed from its environment).
SETTINGS: dict[str, dict[str, str]] = {
    "native (TensorFlow's own choice)": {"CNNLIB_ARITHMETIC": "native"},
    "pinned": {"CNNLIB_ARITHMETIC": "pinned"},
    "pinned, run again": {"CNNLIB_ARITHMETIC": "pinned"},
    "pinned but Eigen's kernels": _pinned(TF_ENABLE_ONEDNN_OPTS="0"),
    "pinned on a CPU without AVX2 (cap AVX)": _pinned(ONEDNN_MAX_CPU_ISA="AVX"),
    "pinned on a CPU without AVX (cap SSE41)": _pinned(ONEDNN_MAX_CPU_ISA="SSE41"),
    "pinned but 1 thread": _pinned(TF_NUM_INTRAOP_THREADS="1"),
    "pinned but OpenBLAS Sandybridge core": _pinned(OPENBLAS_CORETYPE="Sandybridge"),
}
BASELINE = "native (TensorFlow's own choice)"
REFERENCE = "pinned"


def _digest(array) -> str:
    import numpy as np

    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def child(out: Path, quick: bool) -> None:
    """The workload: every part's arrays (saved) and seconds (printed as JSON)."""
    import numpy as np

    from cnnlib import arithmetic
    from cnnlib._tensorflow import keras, tf
    from cnnlib.models import training
    from cnnlib.models.architectures import build_model

    n_train, epochs, n_vgg = (32, 1, 2) if quick else (250, 2, 8)  # 250: the training split's size
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n_train, 224, 224, 3), dtype=np.uint8)
    y = rng.integers(0, 5, n_train)
    parts, seconds = {}, {}

    training.set_seed(0)
    model = build_model("arch3", n_classes=5)
    training.compile_model(model, training.config.train_settings("full"))
    model.fit(x[:32], y[:32], batch_size=32, epochs=1, verbose=0)  # traces the step: not timed
    start = time.perf_counter()
    history = model.fit(x, y, batch_size=32, epochs=epochs, shuffle=True, verbose=0)
    seconds["train"] = time.perf_counter() - start
    parts["train_weights"] = np.concatenate([w.ravel() for w in model.get_weights()])
    parts["train_loss"] = np.asarray(history.history["loss"], np.float32)

    keras.utils.set_random_seed(0)
    base = keras.applications.VGG19(weights=None, include_top=False, input_shape=(224, 224, 3))
    images = keras.applications.vgg19.preprocess_input(x[:n_vgg].astype("float32"))
    base.predict(images[:1], verbose=0)  # trace once, untimed
    start = time.perf_counter()
    parts["vgg19_features"] = base.predict(images, batch_size=8, verbose=0)
    seconds["vgg19_forward"] = time.perf_counter() - start

    inputs = tf.constant(images[:2])
    start = time.perf_counter()
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        score = tf.reduce_sum(base(inputs)[..., :8])
    parts["vgg19_input_gradient"] = tape.gradient(score, inputs).numpy()
    seconds["vgg19_gradient"] = time.perf_counter() - start

    a = rng.standard_normal((224, 14)).astype(np.float32)
    m = rng.standard_normal((64, 14, 14)).astype(np.float32)
    start = time.perf_counter()
    for _ in range(20):
        up = a @ m @ a.T
    seconds["numpy_matmul"] = time.perf_counter() - start
    parts["numpy_matmul"] = up

    np.savez(out, **parts)
    print(json.dumps({"seconds": seconds, "arithmetic": arithmetic.describe()}))


def run_setting(name: str, quick: bool, folder: Path) -> dict:
    from cnnlib.arithmetic import PINNED

    env = {k: v for k, v in os.environ.items() if k not in PINNED and k != "DNNL_MAX_CPU_ISA"}
    env.update(SETTINGS[name])
    out = folder / f"{hashlib.sha256(name.encode()).hexdigest()[:8]}.npz"
    args = [sys.executable, __file__, "--child", str(out)] + (["--quick"] if quick else [])
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"setting {name!r} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    report["file"] = out
    return report


def compare(arrays, reference) -> dict:
    """part -> "same" or the largest |a - b| / max|b| (relative to the part's scale)."""
    import numpy as np

    out = {}
    for part in reference.files:
        a, b = arrays[part].astype(np.float64), reference[part].astype(np.float64)
        if _digest(arrays[part]) == _digest(reference[part]):
            out[part] = "same"
        else:
            out[part] = float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))
    return out


def run(quick: bool = False, names=None) -> dict:
    import numpy as np

    names = list(names or SETTINGS)
    with tempfile.TemporaryDirectory() as tmp:
        reports = {name: run_setting(name, quick, Path(tmp)) for name in names}
        reference = np.load(reports[REFERENCE]["file"])
        table = {}
        for name, report in reports.items():
            diff = compare(np.load(report["file"]), reference)
            ratio = {part: report["seconds"][part] / reports[BASELINE]["seconds"][part] for part in report["seconds"]}
            table[name] = {
                "settings": SETTINGS[name],
                "effective": report["arithmetic"],
                "vs_pinned": diff,
                "seconds": report["seconds"],
                "time_vs_native": ratio,
            }
    return {"quick": quick, "cpu": _cpu_flags(), "settings": table}


def _cpu_flags() -> str:
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return "unknown"
    wanted = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile")
    return " ".join(f for f in wanted if f in flags)


def show(result: dict) -> None:
    print(f"CPU offers: {result['cpu']}; {'quick' if result['quick'] else 'full'} workload")
    parts = list(next(iter(result["settings"].values()))["vs_pinned"])
    print(f"{'setting':48s} " + " ".join(f"{p:>20s}" for p in parts) + "   time vs native (train, vgg fwd, grad)")
    for name, row in result["settings"].items():
        cells = []
        for part in parts:
            value = row["vs_pinned"][part]
            cells.append(f"{'identical' if value == 'same' else f'differs {value:.1e}':>20s}")
        t = row["time_vs_native"]
        times = f"{t['train']:.2f} {t['vgg19_forward']:.2f} {t['vgg19_gradient']:.2f}"
        print(f"{name:48s} " + " ".join(cells) + "   " + times)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    if "--child" in sys.argv:
        child(Path(sys.argv[sys.argv.index("--child") + 1]), "--quick" in sys.argv)
    else:
        result = run(quick="--quick" in sys.argv)
        show(result)
        if "--record" in sys.argv:
            from timing import update_benchmarks

            update_benchmarks("arithmetic", result)
