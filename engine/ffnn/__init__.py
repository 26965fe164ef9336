"""The feed-forward net, one forward definition differentiated by our autodiff or by jax.grad.

`model`: the architecture, parameters and pure functions over them (both backends' gradients,
predictions, model files). `family`: what features ask of it (`FAMILY`). `plane`: the net as a
loss landscape's plane function. `snapshot`: what a run records at each evaluation.
`training`: run settings, limits, the stepper. The names other parts use are re-exported here:
`from engine import ffnn; ffnn.training_run(...)`.
"""

from engine.ffnn.family import FFNN as FAMILY
from engine.ffnn.model import (
    BACKENDS,
    MODEL_KIND,
    N_PIXELS,
    Architecture,
    LayerDifference,
    Params,
    autodiff_loss_and_grads,
    autodiff_predict_labels,
    checkpoint_bytes,
    first_layer_images,
    format_hidden,
    forward,
    gradient_differences,
    gradients,
    init_params,
    logits,
    loss,
    parse_hidden,
    predict_labels,
    predict_proba,
    read_checkpoint,
    uniform_guess_loss,
)
from engine.ffnn.snapshot import Snapshot
from engine.ffnn.training import (
    TrainingConfig,
    check_config,
    limit_problems,
    make_stepper,
    step_flops,
    training_run,
    twin_batch,
)

__all__ = [
    "BACKENDS", "FAMILY", "MODEL_KIND", "N_PIXELS", "Architecture", "LayerDifference", "Params",
    "Snapshot", "TrainingConfig", "autodiff_loss_and_grads", "autodiff_predict_labels",
    "check_config", "checkpoint_bytes", "first_layer_images", "format_hidden", "forward",
    "gradient_differences", "gradients", "init_params", "limit_problems", "logits", "loss",
    "make_stepper", "parse_hidden", "predict_labels", "predict_proba", "read_checkpoint",
    "step_flops", "twin_batch", "training_run", "uniform_guess_loss",
]
