"""A CNN in JAX whose convolution is written here (im2col by shifted slices and one matmul).

`layers`: convolution, pooling, dropout, shift augmentation. `model`: the architecture spec,
pure functions over parameters and model files. `family`: what features ask of it (`FAMILY`).
`plane`: the net as a loss landscape's plane function. `snapshot`: what a run records at each
evaluation. `training`: the step rule, run settings, limits. The names
other parts use are re-exported here: `from engine import cnn; cnn.logits(...)`.
"""

from engine.cnn.family import CNN as FAMILY
from engine.cnn.layers import (
    POOL_SIZE,
    ArchitectureError,
    conv2d,
    conv_output_size,
    dropout,
    im2col,
    lax_conv2d,
    padding_amounts,
    pool2d,
)
from engine.cnn.model import (
    IMAGE_SIZE,
    MODEL_KIND,
    CNNSpec,
    Params,
    as_nhwc,
    batched_proba,
    checkpoint_bytes,
    conv_block,
    feature_maps,
    first_layer_filters,
    format_filters,
    init_params,
    logits,
    parse_filters,
    predict_labels,
    predict_proba,
    read_checkpoint,
    saliency,
    validate_spec,
)
from engine.cnn.snapshot import Snapshot
from engine.cnn.training import (
    TrainingConfig,
    check_config,
    limit_problems,
    step_flops,
    step_rule,
    training_run,
)
from engine.data.mnist import N_CLASSES
from engine.nn.layers import random_shift

__all__ = [
    "FAMILY", "ArchitectureError", "CNNSpec", "IMAGE_SIZE", "MODEL_KIND", "N_CLASSES",
    "POOL_SIZE", "Params", "Snapshot", "TrainingConfig", "as_nhwc", "batched_proba",
    "check_config",
    "checkpoint_bytes", "conv2d", "conv_block", "conv_output_size",
    "dropout", "feature_maps", "first_layer_filters", "format_filters", "im2col", "init_params",
    "lax_conv2d", "limit_problems", "logits", "padding_amounts", "parse_filters", "pool2d",
    "predict_labels", "predict_proba", "random_shift", "read_checkpoint", "saliency",
    "step_flops", "step_rule", "training_run", "validate_spec",
]
