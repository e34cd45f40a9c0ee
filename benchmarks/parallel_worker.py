"""Worker for bench_perf: train one custom variant with a given number of TensorFlow threads; print a JSON line."""

from __future__ import annotations

import hashlib
import json
import sys
import time

threads, variant, seeds = int(sys.argv[1]), sys.argv[2], [int(s) for s in sys.argv[3].split(",")]
import tensorflow as tf  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(threads)  # must precede any TensorFlow op
tf.config.threading.set_inter_op_parallelism_threads(threads)
import numpy as np  # noqa: E402

from cnnlib import config  # noqa: E402
from cnnlib.data import images  # noqa: E402
from cnnlib.models import training  # noqa: E402

split = images.load_project_split()
for seed in seeds:
    start = time.perf_counter()
    model, record = training.train_variant(variant, split.arrays, config.train_settings("full"), seed, cache=False)
    digest = hashlib.sha256(b"".join(np.asarray(w).tobytes() for w in model.get_weights())).hexdigest()
    print(
        json.dumps(
            {
                "threads": threads,
                "seed": seed,
                "epochs": record["epochs_run"],
                "seconds": time.perf_counter() - start,
                "weights_sha256": digest,
            }
        ),
        flush=True,
    )
