"""Ended runs taken in: a run's model becomes its room's (and the sketch lab's), and the
session's heartbeat keeps active runs alive on every page."""

from __future__ import annotations

import streamlit as st

from engine import ffnn
from engine.data.datasets import reads_digits
from engine.models.model import Model
from ui.models import keep_trained_model
from ui.rooms import ROOMS
from ui.rooms.state import Room, room_state, update_room
from ui.training import run_service


def describe_trained(model: Model, status: str) -> str:
    """How a room names a model trained here whose run ended with `status`."""
    backend = model.metadata.get("training", {}).get("backend")
    engine = f", trained with {ffnn.BACKENDS[backend]}" if backend in ffnn.BACKENDS else ""
    return f"your {model.family.name} ({model.describe()}{engine}, {status})"


def adopt_ended_run(room: Room) -> None:
    """Take in the model of the room's run once it has ended: it becomes the room's model, and,
    when usable (not diverged, trained at least a step) and a reader of digits (not trained on
    Fashion-MNIST), the sketch lab's in its slot."""
    state = room_state(room)
    if state.run is None or state.adopted == state.run.id:
        return
    view = state.run.view()
    if view.active:
        return
    if view.model is None:
        update_room(room, adopted=state.run.id)
        return
    model = view.model.on_device()  # a prediction then copies only the image
    update_room(room, adopted=state.run.id, model=model,
                label=describe_trained(model, view.status))
    slot = room.sketch_slot(model)
    if view.usable and slot is not None and reads_digits(model.metadata.get("dataset", "")):
        keep_trained_model(slot, model)


def adopt_ended_runs() -> None:
    """Every room's ended run, adopted wherever the learner is (the sketch lab gets new models
    without a visit to the room they came from). The router calls it on every rerun."""
    for room in ROOMS:
        adopt_ended_run(room)


def keep_runs_alive() -> None:
    """The session's heartbeat, on every page: touch the rooms' active runs every third of the
    abandon time, and rerun the app once one of them has ended, so its model is adopted wherever
    the learner is. Once the browser is gone nothing reruns this, and the runs stop themselves.

    Always drawn, run or no run: an element that came and went with a run would shift every
    element after it, and the browser would reset their state (open tabs, drawings).
    """

    @st.fragment(run_every=max(1.0, run_service().abandon_seconds / 3))
    def heartbeat() -> None:
        ended = False
        for room in ROOMS:
            state = room_state(room)
            if state.run is None or state.adopted == state.run.id:
                continue
            if state.run.view().active:
                state.run.touch()
            else:
                ended = True
        if ended:
            st.rerun(scope="app")

    heartbeat()
