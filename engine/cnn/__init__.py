"""A CNN in JAX whose convolution is written here (im2col by shifted slices and one matmul).

`layers`: convolution, pooling, dropout, shift augmentation. `model`: the architecture spec and
pure functions over parameters. `training`: the stepper, run settings and model files. The names
other parts use are re-exported here: `from engine import cnn; cnn.logits(...)`.
"""

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
    CNNSpec,
    Params,
    as_nhwc,
    batched_proba,
    conv_block,
    feature_maps,
    first_layer_filters,
    format_filters,
    init_params,
    logits,
    parse_filters,
    predict_labels,
    predict_proba,
    saliency,
    validate_spec,
)
from engine.cnn.training import (
    MODEL_KIND,
    PRETRAIN_CONFIG,
    Snapshot,
    TrainingConfig,
    check_config,
    checkpoint_bytes,
    default_model_bytes,
    limit_problems,
    read_checkpoint,
    step_flops,
    step_rule,
    training_run,
)
from engine.data import N_CLASSES
from engine.layers import random_shift

__all__ = [
    "ArchitectureError", "CNNSpec", "IMAGE_SIZE", "MODEL_KIND", "N_CLASSES", "POOL_SIZE",
    "PRETRAIN_CONFIG", "Params", "Snapshot", "TrainingConfig", "as_nhwc", "batched_proba",
    "check_config",
    "checkpoint_bytes", "conv2d", "conv_block", "conv_output_size", "default_model_bytes",
    "dropout", "feature_maps", "first_layer_filters", "format_filters", "im2col", "init_params",
    "lax_conv2d", "limit_problems", "logits", "padding_amounts", "parse_filters", "pool2d",
    "predict_labels", "predict_proba", "random_shift", "read_checkpoint", "saliency",
    "step_flops", "step_rule", "training_run", "validate_spec",
]
