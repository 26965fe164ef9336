"""What a room's page calls: open the room, its current model, its Start/Stop/Reset buttons,
its live run, and a newly uploaded model file."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from engine.app.settings import limits
from engine.models.checkpoint import CheckpointError
from engine.models.files import model_from_bytes
from engine.models.model import Model
from ui.models import forget_trained_model, load_defaults
from ui.rooms.adoption import adopt_ended_run
from ui.rooms.links import restore_linked_run, show_run_in_url
from ui.rooms.state import Room, RoomState, room_state, update_room
from ui.training import live_panel


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


def room_buttons(cells: list, room: Room, *, start_label: str, reset_help: str,
                 starting: bool = False) -> bool:
    """Start, Stop and Reset of a room in three cells (keys <prefix>start/stop/reset); True
    on Start (or when `starting`: a run was asked for elsewhere, a preset). Stop ends the room's
    run: enabled while it runs or is about to (the live panel reruns the page when it ends);
    Reset also forgets its model and restores its controls."""
    start = cells[0].button(start_label, type="primary", icon=":material/play_arrow:",
                            key=f"{room.prefix}start", width="stretch") or starting
    run = room_state(room).run
    cells[1].button("Stop", icon=":material/stop:", key=f"{room.prefix}stop", width="stretch",
                    on_click=stop_room_run, args=(room,),
                    disabled=not start and (run is None or not run.view().active))
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
