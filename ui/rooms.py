"""The training rooms' session state: one frozen `RoomState` per room, replaced whole, never
patched; and what differs between the rooms, as a `Room`.

    room = open_room(FEEDFORWARD)   # at the top of the page: brings back a linked run, adopts
                                    # an ended one; returns the room's RoomState
    model, label = current_model(FEEDFORWARD)

A room's run, its model (trained, uploaded or brought back by a link) and the model's label live
in st.session_state[room.key]. The widgets keep their own keys (prefix "ff_", "cnn_"), seeded
from the engine's `TrainingConfig()` through `room.controls`, the one mapping from a run's
training settings to the room's controls; a restored run sets them back the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import streamlit as st

from engine import cnn, ffnn
from engine.app.settings import limits
from engine.cnn.model import PADDINGS
from engine.data.datasets import reads_digits
from engine.models.checkpoint import CheckpointError
from engine.models.family import Family
from engine.models.files import model_from_bytes
from engine.models.model import Model
from engine.nn.layers import ACTIVATIONS, INITS
from engine.training import runs
from engine.training.service import Run
from ui.models import forget_trained_model, keep_trained_model, load_defaults
from ui.training import live_panel, run_service

RUN_PARAM = "run"  # the URL's query parameter holding the page's run id
RUN_IDS_SEEN = "run_ids_seen"  # session state: run ids this session has shown or tried
LINK_NOTE = ", brought back by its link"  # added to the label of a restored run's model

# The rooms' choices, as their controls name them.
LOSS_NAMES = {"cross_entropy": "softmax cross-entropy", "mse": "squared error on one-hot"}
OPTIMIZER_NAMES = {"adam": "Adam", "momentum": "SGD + momentum (0.9)", "sgd": "plain SGD"}
POOL_NAMES = {"max": "max-pool 2×2", "avg": "average-pool 2×2", "none": "no pooling"}
KERNEL_SIZES = (3, 5, 7)
INIT_NAMES = {"he": "He", "xavier": "Glorot/Xavier", "lecun": "LeCun", "tiny": "tiny (He ×0.01)",
              "large": "large (He ×10)", "zeros": "zeros"}


@dataclass(frozen=True)
class RoomState:
    """One training room's state in a session.

    run: the room's latest run (active or ended); None before the first. model: the room's model
    when it is not the default (trained here, uploaded, brought back by a link); label: how the
    page names it. adopted: the id of the run whose ended model was taken in (once per run).
    upload_error: why the last uploaded model file was refused. followed: the digit the run
    follows, in words (CNN). twin: the last on-demand twin-engine check (FFNN).
    """

    run: Run | None = None
    model: Model | None = None
    label: str = ""
    adopted: int | None = None
    upload_error: str = ""
    followed: str = ""
    twin: tuple = ()


@dataclass(frozen=True)
class Room:
    """What differs between the training rooms.

    prefix: the widget-key prefix ("ff_"). family: the model family it trains (its `kind` names
    the room's runs, links and downloads).
    defaults: the engine's default training settings, as metadata (`TrainingConfig()
    .to_metadata()`). controls: training metadata -> {widget key: value}; it ignores what it
    cannot read (an uploaded file's metadata is input). slots: model -> the sketch-lab slot it is
    offered in (None: none); default_slot: () -> the slot of the default shown. describe_default:
    the default model -> its label. all_slots: every sketch-lab slot its models may take.
    other_defaults: the defaults of controls that are not training settings.
    """

    prefix: str
    family: Family
    defaults: Mapping[str, Any]
    controls: Callable[[Mapping[str, Any]], dict[str, Any]]
    sketch_slot: Callable[[Model], str | None]
    default_slot: Callable[[], str]
    describe_default: Callable[[Model], str]
    all_slots: tuple[str, ...] = ()
    other_defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.prefix}room"

    @property
    def kind(self) -> str:
        """The stored name of its family: what its runs, links and downloads are labelled."""
        return self.family.kind

    def default_controls(self) -> dict[str, Any]:
        """Every control's default: the engine's training defaults, and the room's others."""
        return {**self.other_defaults, **self.controls(self.defaults)}


def room_state(room: Room) -> RoomState:
    """The room's state in this session (a fresh one before anything happened)."""
    return st.session_state.get(room.key) or RoomState()


def update_room(room: Room, **changes: Any) -> RoomState:
    """Replace the room's state with a copy carrying `changes`; the new state."""
    new = replace(room_state(room), **changes)
    st.session_state[room.key] = new
    return new


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


def _seen() -> set[str]:
    """The run ids this session has shown in its URL or tried to restore."""
    return st.session_state.setdefault(RUN_IDS_SEEN, set())


# Streamlit writes every change of the query string as a new browser-history entry, so putting
# a run's id in the URL made Back stop on the same page. This script, on every page, turns an
# entry that would differ from the current URL only by ?run= into a replacement of it.
RUN_LINK_SCRIPT = """<script>
if (!window.glassboxRunLinks) {
  window.glassboxRunLinks = true;
  const push = window.history.pushState.bind(window.history);
  const withoutRun = (url) => {
    const parsed = new URL(url, window.location.href);
    parsed.searchParams.delete("run");
    return parsed.pathname + "?" + parsed.searchParams.toString();
  };
  window.history.pushState = (state, title, url) =>
    withoutRun(url) === withoutRun(window.location.href)
      ? window.history.replaceState(state, title, url) : push(state, title, url);
}
</script>"""


def keep_run_links_out_of_history() -> None:
    """Make a run's id in the URL replace the current history entry instead of adding one
    (see RUN_LINK_SCRIPT). Call on every page; the script installs itself once per tab."""
    st.html(RUN_LINK_SCRIPT, unsafe_allow_javascript=True)


def show_run_in_url(run: Run) -> None:
    """Put the run's id in the page's URL (?run=...), where a reload or a bookmark finds it."""
    _seen().add(run.token)
    if st.query_params.get(RUN_PARAM) != run.token:
        st.query_params[RUN_PARAM] = run.token


def restore_linked_run(room: Room) -> None:
    """Bring back the run the URL names (?run=<id>) with its controls and, once ended, its model.

    Acts only on an id this session has not seen (a reload, a bookmark). A malformed, unknown or
    damaged run, or one of another room, gets an st.warning and leaves the URL; an id this
    session has seen but no longer holds (after Reset) is taken out of the URL.
    """
    wanted = st.query_params.get(RUN_PARAM)
    current = room_state(room).run
    if wanted is None or (current is not None and current.token == wanted):
        return
    if wanted in _seen():
        del st.query_params[RUN_PARAM]
        return
    _seen().add(wanted)
    try:
        run = run_service().restore(wanted, room.kind)
    except (runs.RunIdError, runs.RunNotFoundError, runs.RunFileError, CheckpointError) as error:
        st.warning(f"Cannot bring back the training run of this link. {error}",
                   icon=":material/link_off:")
        del st.query_params[RUN_PARAM]
        return
    st.session_state.update(room.controls(run.settings))
    st.session_state[room.key] = RoomState(run=run)
    adopt_ended_run(room)
    state = room_state(room)
    if state.model is not None:
        update_room(room, label=state.label + LINK_NOTE)


def show_room_run(room: Room, *, draw_snapshot: Callable, idle: str) -> None:
    """The room's run, live (its id in the URL), or, before the first, the `idle` caption; one
    container either way, so nothing below it moves when a run starts."""
    with st.container():
        run = room_state(room).run
        if run is None:
            st.caption(idle)
            return
        show_run_in_url(run)
        live_panel(run, key=f"{room.prefix}live", draw_snapshot=draw_snapshot)


def read_uploaded_model(room: Room) -> None:
    """Make a newly uploaded model file the room's model, or keep why it cannot be (the
    room's `upload_error`). Call before the room's model is drawn."""
    upload = st.session_state.get(f"{room.prefix}model_file")
    seen = f"{room.prefix}model_file_id"
    if upload is None or st.session_state.get(seen) == upload.file_id:
        return
    st.session_state[seen] = upload.file_id
    if upload.size > limits().max_upload_mb * 2**20:
        update_room(room, upload_error=f"{upload.name} is {upload.size / 2**20:.0f} MB; this "
                                       f"server takes model files up to "
                                       f"{limits().max_upload_mb} MB.")
        return
    try:
        model = model_from_bytes(upload.getvalue())
    except CheckpointError as error:
        update_room(room, upload_error=f"{upload.name}: {error}")
        return
    if model.family is not room.family:
        update_room(room, upload_error=f"{upload.name} holds a {model.family.name}; this room "
                                       f"trains {room.family.name}s.")
        return
    update_room(room, model=model.on_device(), upload_error="",
                label=f"the uploaded model {upload.name} ({model.describe()})")


def open_room(room: Room) -> RoomState:
    """Call at the top of a room's page: a linked run comes back, an ended run is adopted, a
    newly uploaded model file is read."""
    restore_linked_run(room)
    adopt_ended_run(room)
    read_uploaded_model(room)
    return room_state(room)


def current_model(room: Room) -> tuple[Model, str]:
    """(model, its label): the room's own model if it has one, else the default in
    `default_slot()`; st.error and st.stop when that is missing."""
    state = room_state(room)
    if state.model is not None:
        return state.model, state.label
    defaults, missing = load_defaults()
    slot = room.default_slot()
    if slot not in defaults:
        st.error(missing.get(slot, f"The default model {slot} is missing: run "
                                   f"`python -m engine.app.pretrain {slot}`."))
        st.stop()
    return defaults[slot], room.describe_default(defaults[slot])


def stop_room_run(room: Room) -> None:
    """Stop the room's run, if there is one (the Stop button)."""
    run = room_state(room).run
    if run is not None:
        run.stop()


def shift_slider(room: Room) -> None:
    """The room's augmentation control (key prefix + "shift"): 0 to 4 pixels."""
    st.slider("Augmentation: random shifts (pixels)", 0, 4, key=f"{room.prefix}shift",
              help="Each training digit moves by up to this many pixels, a new shift every "
                   "time: the net learns that a digit is the same a little off-centre, as "
                   "drawn digits often are.")


def room_buttons(cells: list, room: Room, *, start_label: str, reset_help: str) -> bool:
    """Start, Stop and Reset of a room in three cells (keys <prefix>start/stop/reset); True
    on Start. Stop ends the room's run; Reset also forgets its model and restores its controls."""
    start = cells[0].button(start_label, type="primary", icon=":material/play_arrow:",
                            key=f"{room.prefix}start", width="stretch")
    cells[1].button("Stop", icon=":material/stop:", key=f"{room.prefix}stop", width="stretch",
                    on_click=stop_room_run, args=(room,))
    cells[2].button("Reset", icon=":material/restart_alt:", key=f"{room.prefix}reset",
                    width="stretch", on_click=reset_room, args=(room,), help=reset_help)
    return start


def reset_room(room: Room) -> None:
    """Stop the room's run, forget its model (here and in the sketch lab), restore its
    controls (an on_click callback: it runs before the widgets are drawn)."""
    stop_room_run(room)
    st.session_state[room.key] = RoomState()
    st.session_state.update(room.default_controls())
    for slot in room.all_slots:
        forget_trained_model(slot)


# --- the two rooms ---------------------------------------------------------------------------


def _pick(meta: Mapping[str, Any], name: str, kind: type | tuple[type, ...],
          choices: Any = None) -> Any:
    """meta[name] if it is of `kind` (and among `choices`, if given), else None."""
    value = meta.get(name) if isinstance(meta, Mapping) else None
    if isinstance(value, bool) and kind is not bool:
        return None
    if not isinstance(value, kind) or (choices is not None and value not in choices):
        return None
    return value


def _controls(prefix: str, fields: dict[str, Any]) -> dict[str, Any]:
    """{prefix + name: value} for the fields that could be read."""
    return {f"{prefix}{name}": value for name, value in fields.items() if value is not None}


def feedforward_controls(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The feed-forward room's controls for a run's training settings (ffnn.TrainingConfig's
    metadata)."""
    arch = _pick(meta, "arch", Mapping) or {}
    hidden = _pick(arch, "hidden", list)
    return _controls("ff_", {
        "backend": _pick(meta, "backend", str, ffnn.BACKENDS),
        "hidden": None if hidden is None else ", ".join(str(int(h)) for h in hidden
                                                         if isinstance(h, int)),
        "activation": _pick(arch, "activation", str, ACTIVATIONS),
        "init": _pick(arch, "init", str, INITS),
        "batch_norm": _pick(arch, "batch_norm", bool),
        "loss": _pick(meta, "loss", str, LOSS_NAMES),
        "optimizer": _pick(meta, "optimizer", str, OPTIMIZER_NAMES),
        "learning_rate": _pick(meta, "learning_rate", (int, float)),
        "batch_size": _pick(meta, "batch_size", int),
        "epochs": _pick(meta, "epochs", int),
        "shift": _pick(meta, "max_shift", int)})


def cnn_controls(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The CNN room's controls for a run's training settings (cnn.TrainingConfig's metadata)."""
    spec = _pick(meta, "spec", Mapping) or {}
    filters = _pick(spec, "filters", list)
    dropout = _pick(spec, "dropout", (int, float))
    return _controls("cnn_", {
        "filters": None if filters is None else ", ".join(str(int(f)) for f in filters
                                                           if isinstance(f, int)),
        "kernel": _pick(spec, "kernel_size", int, KERNEL_SIZES),
        "pool": _pick(spec, "pool", str, POOL_NAMES),
        "padding": _pick(spec, "padding", str, PADDINGS),
        "use_dropout": None if dropout is None else dropout > 0,
        "dropout": dropout if dropout else None,
        "optimizer": _pick(meta, "optimizer", str, OPTIMIZER_NAMES),
        "learning_rate": _pick(meta, "learning_rate", (int, float)),
        "batch_size": _pick(meta, "batch_size", int),
        "epochs": _pick(meta, "epochs", int),
        "shift": _pick(meta, "max_shift", int),
        "decay": _pick(meta, "cosine_decay", bool)})


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
