"""The training rooms (`FEEDFORWARD`, `CNN`): each a `Room` of `state`, its controls from
`controls`. Their pages use `page` (open the room, its model, its buttons); `links` brings a run
back from the URL; `adoption` takes in ended runs, wherever the learner is.

    room = open_room(FEEDFORWARD)   # at the top of the page: brings back a linked run, adopts
                                    # an ended one; returns the room's RoomState
    model, label = current_model(FEEDFORWARD)

A room's run, its model (trained, uploaded or brought back by a link) and the model's label live
in st.session_state[room.key]. The widgets keep their own keys (prefix "ff_", "cnn_"), seeded
from the engine's `TrainingConfig()` through `room.controls`.
"""

from __future__ import annotations

import streamlit as st

from engine import cnn, ffnn
from engine.models.model import Model
from ui.rooms.controls import cnn_controls, feedforward_controls
from ui.rooms.state import Room


def _ffnn_sketch_slot(model: Model) -> str | None:
    backend = model.metadata.get("training", {}).get("backend")
    return f"ffnn-{backend}" if backend in ffnn.BACKENDS else None


def _describe_default_ffnn(model: Model) -> str:
    backend = st.session_state.get("ff_backend", "jax")
    return (f"the default model ({model.describe()}, trained with {ffnn.BACKENDS[backend]}, "
            f"{model.metadata['metrics']['test_accuracy']:.1%} on the test digits)")


def _describe_default_cnn(model: Model) -> str:
    return (f"the pretrained default CNN ({model.describe()}, "
            f"{model.metadata['metrics']['test_accuracy']:.1%} on the test digits)")


FEEDFORWARD = Room(
    prefix="ff_", family=ffnn.FAMILY, defaults=ffnn.TrainingConfig().to_metadata(),
    controls=feedforward_controls, sketch_slot=_ffnn_sketch_slot,
    default_slot=lambda: f"ffnn-{st.session_state.get('ff_backend', 'jax')}",
    describe_default=_describe_default_ffnn,
    all_slots=tuple(f"ffnn-{backend}" for backend in ffnn.BACKENDS),
    other_defaults={"ff_dataset": "embedded", "ff_continue": False})


CNN = Room(
    prefix="cnn_", family=cnn.FAMILY, defaults=cnn.TrainingConfig().to_metadata(),
    controls=cnn_controls, sketch_slot=lambda model: "cnn", default_slot=lambda: "cnn",
    describe_default=_describe_default_cnn, all_slots=("cnn",),
    other_defaults={"cnn_follow": "test",
                    "cnn_test_index": 492,  # a 4 that could pass for a 9: its answer moves
                    "cnn_dropout": 0.25})  # the rate offered once dropout is ticked


ROOMS = (FEEDFORWARD, CNN)
