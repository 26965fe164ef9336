"""The model a training room shows: its last ended run's, one brought back by a link, or the
pretrained default.

Both training rooms keep it the same way under their key prefix p (e.g. "ff_"):
st.session_state[p + "model"] holds (Model, its description), p + "adopted_run" the id of the
run it came from, p + "run" the room's ui.training.Run. A model trained here is also offered to
the sketch lab (ui.models.keep_trained_model). What differs between the rooms (how a model is
built, named, and which slot it goes to) is a `RoomModel`'s fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st

from engine.predict import Model
from ui.models import keep_trained_model, load_defaults
from ui.training import restore_run

LINK_NOTE = ", brought back by its link"  # added to the description of a restored run's model


@dataclass(frozen=True)
class RoomModel:
    """How one training room turns its runs into the session's model.

    prefix: the room's session-key prefix ("ff_", "cnn_").
    kind: the model kind its runs and links carry (the engine's MODEL_KIND).
    read_model_file: a run's saved file -> (architecture, params, metadata): read_checkpoint.
    build: (architecture, params, metadata) -> Model: engine.predict.ffnn_model or cnn_model.
    run_parts: () -> (architecture, metadata without the metrics) of the model the session's
        run trains, from what the page keeps beside the run in session state.
    describe_trained: (model, run status) -> its description, e.g. "your CNN (...), trained
        here (finished)".
    trained_slot: model -> the sketch-lab slot it is offered in; None for none.
    default_slot: () -> the slot of the default model to show when the session has none.
    describe_default: the default model -> its description.
    """

    prefix: str
    kind: str
    read_model_file: Callable[[bytes], tuple[Any, Any, dict[str, Any]]]
    build: Callable[[Any, Any, Mapping[str, Any]], Model]
    run_parts: Callable[[], tuple[Any, dict[str, Any]]]
    describe_trained: Callable[[Model, str], str]
    trained_slot: Callable[[Model], str | None]
    default_slot: Callable[[], str]
    describe_default: Callable[[Model], str]

    def restore_linked_run(self) -> None:
        """A reload or a bookmark (?run=<id> in the URL): bring that run back, with its model."""
        restored = restore_run(f"{self.prefix}run", self.kind, self.read_model_file)
        if restored is None or restored.model is None:
            return  # nothing to restore, or a run still going on this server: adopted as it ends
        model = self.build(*restored.model)
        self._adopt(restored.run.id, model,
                    self.describe_trained(model, restored.run.view().status) + LINK_NOTE)

    def adopt_finished_run(self) -> None:
        """Make a run that has ended (finished, stopped or diverged) the session's model, once,
        and offer it to the sketch lab."""
        run = st.session_state.get(f"{self.prefix}run")
        if run is None or st.session_state.get(f"{self.prefix}adopted_run") == run.id:
            return
        view = run.view()
        if view.active or view.latest is None or view.latest.params is None:
            return
        architecture, metadata = self.run_parts()
        model = self.build(architecture, view.latest.params, {
            **metadata, "metrics": {"test_accuracy": view.latest.test_accuracy,
                                    "val_accuracy": view.latest.val_accuracy}})
        self._adopt(run.id, model, self.describe_trained(model, view.status))

    def current_model(self) -> tuple[Model, str]:
        """(model, its description): the session's model if there is one, else the default in
        `default_slot()`; st.error and st.stop when that is missing."""
        if f"{self.prefix}model" in st.session_state:
            return st.session_state[f"{self.prefix}model"]
        defaults, missing = load_defaults()
        slot = self.default_slot()
        if slot not in defaults:
            st.error(missing.get(slot, f"The default model {slot} is missing: run "
                                       f"`python -m engine.pretrain {slot}`."))
            st.stop()
        return defaults[slot], self.describe_default(defaults[slot])

    def _adopt(self, run_id: int, model: Model, description: str) -> None:
        """Keep `model` as the session's model, from run `run_id`, and in its sketch-lab slot."""
        st.session_state[f"{self.prefix}adopted_run"] = run_id
        st.session_state[f"{self.prefix}model"] = (model, description)
        slot = self.trained_slot(model)
        if slot is not None:
            keep_trained_model(slot, model)
