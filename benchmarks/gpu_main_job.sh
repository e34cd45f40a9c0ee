#!/usr/bin/env bash
# The main job's notebooks on a GPU machine whose Python has JAX with CUDA but no TensorFlow and no network
# (the case docs/performance.md records): Keras's JAX backend, cold cache, the same commands as `make notebooks`.
#
#   bash benchmarks/gpu_main_job.sh OUT WHEELS IMAGES
#
# OUT     a folder for the log and outputs.tar.gz (results/, figures/, notebooks/, data/splits/ after the run)
# WHEELS  a folder of cp312 wheels the machine lacks (Keras, the Jupyter stack, pandas; pip download on a machine
#         with an index: docs/performance.md lists them); installed with --target, nothing else is touched
# IMAGES  a folder holding the five reference classes of Caltech-101 (CALTECH101_DIR)
# PYTHON (environment, default python3) the interpreter; WHEELS "-" installs nothing (a rehearsal on a CPU machine);
# LIMIT_S (default 3600) stops the notebooks after that many seconds, so that what ran still comes back
#
# The PDF is built afterwards from the returned results and figures (`make pdf`: Typst's wheel, 33 MB, is left
# out of the carried wheels), and `python benchmarks/bench_main_job.py --from-device OUT` records the run
# (results/benchmarks.json key main_job_gpu) and compares its outputs with the committed TensorFlow ones.
set -uo pipefail
out=${1:?output folder} wheels=${2:?wheel folder} images=${3:?image folder}
mkdir -p "$out"
exec > >(tee "$out/log.txt") 2>&1
python=${PYTHON:-python3}
if [ "$wheels" != - ]; then
  $python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$wheels"/*.whl || exit 1
fi
export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 KERAS_BACKEND=jax CALTECH101_DIR="$(cd "$images" && pwd)"
# A GPU machine with many cores: four later notebooks at once (the files are the same bytes whatever the number).
export CNNLIB_VGG19_WEIGHTS=random CNNLIB_CACHE_DIR=/tmp/cnnlib-cache CNNLIB_NOTEBOOK_JOBS=${CNNLIB_NOTEBOOK_JOBS:-4}
# Two notebooks run at once after 01-03: without this each JAX process would take 75% of the GPU's memory.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
# True float32 products and convolutions, as on the CPU: JAX's default on recent NVIDIA GPUs is TensorFloat-32
# (10-bit mantissa), which would move the sums by about 1e-3 relative.
export JAX_DEFAULT_MATMUL_PRECISION=${JAX_DEFAULT_MATMUL_PRECISION:-float32}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "no nvidia-smi"
$python - <<'EOF'
import json, os, platform
import jax, keras
info = {"devices": [str(d) for d in jax.devices()], "jax": jax.__version__, "keras": keras.__version__,
        "backend": keras.backend.backend(), "python": platform.python_version(), "cpus": os.cpu_count(),
        "matmul_precision": str(jax.config.jax_default_matmul_precision)}
try:
    import tensorflow  # noqa: F401
    info["tensorflow"] = "importable"
except ImportError:
    info["tensorflow"] = "absent"
print("DEVICE", json.dumps(info))
EOF
SECONDS=0
timeout "${LIMIT_S:-3600}" $python -m cnnlib.run.notebooks $(ls notebooks/[0-9][0-9]_*.ipynb | sort)
status=$?
echo "NOTEBOOKS exit $status, $SECONDS s"
tar -czf "$out/outputs.tar.gz" results figures notebooks data/splits
# Time left: the same notebooks once more with the cache warm, and whether the GPU gave the same bytes twice.
if [ "$status" = 0 ] && [ $((SECONDS * 2)) -lt "${LIMIT_S:-3600}" ]; then
  find results figures notebooks data/splits -type f | sort | xargs sha256sum > "$out/cold.sha256"
  SECONDS=0
  timeout "${LIMIT_S:-3600}" $python -m cnnlib.run.notebooks $(ls notebooks/[0-9][0-9]_*.ipynb | sort)
  echo "WARM exit $?, $SECONDS s"
  echo "WARM files not the same bytes as cold: $(sha256sum --quiet -c "$out/cold.sha256" 2>/dev/null | wc -l)"
fi
exit $status
