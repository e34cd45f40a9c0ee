"""Benchmark: our Grad-CAM against tf-keras-vis on the same VGG19 model and image; guided backprop; top-k search.

Part of `make bench` (benchmarks/run_all.py); alone: `python benchmarks/bench_interpret.py`.
Medians of several calls after one warm-up call (which compiles); one process, same model.
"""

from __future__ import annotations

import json

import numpy as np  # noqa: E402
from timing import median_seconds  # noqa: E402

from cnnlib import config, interpret  # first: imports TensorFlow quietly
from cnnlib.data import images
from cnnlib.models import training, vgg19

REPEATS = 7


def median_ms(fn, repeats=REPEATS):
    """Median milliseconds after one warm-up call (which traces and compiles)."""
    return 1000 * median_seconds(fn, repeats, warmup=True)


def run() -> dict:
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore

    split = images.load_project_split()
    settings = config.train_settings("full")
    run = vgg19.fit_classifier(split.arrays, split.split_hash, settings, env={vgg19.ENV_VAR: "random"})
    model, layer = run.model, "block5_conv4"
    x_test = split.arrays["test"][0]
    scorpion = split.first_of_class("test", config.CLASSES.index("scorpion"))
    x = vgg19.preprocess(x_test[scorpion : scorpion + 1])
    target = config.CLASSES.index("scorpion")

    peer = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)  # logits, as ours
    ours_one = median_ms(lambda: interpret.grad_cam(model, x, target, layer))
    peer_one = median_ms(lambda: peer(CategoricalScore([target]), x, penultimate_layer=layer))
    all_targets = list(range(len(config.CLASSES)))
    ours_all = median_ms(lambda: interpret.grad_cam(model, x, all_targets, layer))
    peer_all = median_ms(lambda: [peer(CategoricalScore([t]), x, penultimate_layer=layer) for t in all_targets])
    # Same maps? Compare raw maps (layer resolution, unnormalised) for every target class.
    ours_raw = interpret.grad_cam_raw(model, x, all_targets, layer)[0]
    peer_raw = np.stack(
        [
            np.asarray(peer(CategoricalScore([t]), x, penultimate_layer=layer, expand_cam=False, normalize_cam=False))[
                0
            ]
            for t in all_targets
        ]
    )
    agreement = float(np.abs(ours_raw - peer_raw).max() / max(np.abs(peer_raw).max(), 1e-12))
    batch = vgg19.preprocess(x_test[:8])
    ours_batch = median_ms(lambda: interpret.grad_cam(model, batch, all_targets, layer), repeats=3) / len(batch)

    guided = median_ms(lambda: interpret.guided_backprop(model, x, layer, channel=1))
    best = json.loads((config.RESULTS_DIR / "custom_summary.json").read_text())["best_by_val"]
    custom, _ = training.train_with_sources(best, split.arrays, settings, data_key=split.split_hash)
    x_train = split.arrays["train"][0]
    custom_layer = interpret.conv_layer_names(custom)[-1]
    topk_custom = median_ms(lambda: interpret.top_k_patches(custom, x_train, custom_layer, range(6)), repeats=3) / len(
        x_train
    )
    vgg_train = vgg19.preprocess(x_train[:64])
    topk_vgg = median_ms(lambda: interpret.top_k_patches(model, vgg_train, "block4_conv4", range(6)), repeats=1) / len(
        vgg_train
    )

    summary = {
        "weights": run.weights.label,
        "gradcam_ms_per_image": {"ours": ours_one, "tf_keras_vis": peer_one, "speedup": peer_one / ours_one},
        "gradcam_5_targets_ms_per_image": {"ours": ours_all, "tf_keras_vis": peer_all, "speedup": peer_all / ours_all},
        "gradcam_5_targets_ms_per_image_batch8_ours": ours_batch,
        "gradcam_raw_max_relative_difference_vs_tf_keras_vis": agreement,
        "guided_backprop_ms_per_image": guided,
        "top9_patch_search_ms_per_image": {f"{best}/{custom_layer}": topk_custom, "vgg19/block4_conv4": topk_vgg},
    }
    summary["image"], summary["layer"] = split.path_of("test", scorpion), layer
    return summary


def show(summary: dict) -> None:
    one, five = summary["gradcam_ms_per_image"], summary["gradcam_5_targets_ms_per_image"]
    print(f"VGG19 weights: {summary['weights']}; image {summary['image']}; layer {summary['layer']}")
    print(f"{'Grad-CAM, ms per image':36s} {'ours':>8s} {'tf-keras-vis':>13s} {'speed-up':>9s}")
    print(f"{'  one target class':36s} {one['ours']:8.1f} {one['tf_keras_vis']:13.1f} {one['speedup']:8.1f}x")
    print(f"{'  all 5 target classes':36s} {five['ours']:8.1f} {five['tf_keras_vis']:13.1f} {five['speedup']:8.1f}x")
    print(f"{'  all 5 targets, batch of 8 (ours)':36s} {summary['gradcam_5_targets_ms_per_image_batch8_ours']:8.1f}")
    print(
        f"raw maps (5 targets) vs tf-keras-vis: max difference "
        f"{summary['gradcam_raw_max_relative_difference_vs_tf_keras_vis']:.1e} of the largest value"
    )
    print(
        f"guided backprop (VGG19 {summary['layer']} neuron): {summary['guided_backprop_ms_per_image']:.1f} ms per image"
    )
    for key, value in summary["top9_patch_search_ms_per_image"].items():
        print(f"top-9 patch search, {key}: {value:.1f} ms per image")


if __name__ == "__main__":
    show(run())
