"""The rooms' "Model file" tab: download the room's model, upload one to evaluate or continue."""

from __future__ import annotations

import streamlit as st

from engine.checkpoint import CheckpointError
from engine.model import Model, model_file, model_from_bytes
from engine.settings import limits
from ui.rooms import Room, room_state, update_room


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
    if model.kind != room.kind:
        update_room(room, upload_error=f"{upload.name} holds a {model.kind} model; this room "
                                       f"trains {room.kind} models.")
        return
    update_room(room, model=model.on_device(), upload_error="",
                label=f"the uploaded model {upload.name} ({model.describe()})")


def show_model_file(room: Room, model: Model) -> None:
    """Download the room's model (.npz); upload a model file of this room's kind."""
    st.download_button("Download this model (.npz)", key=f"{room.prefix}download",
                       data=lambda: model_file(model), on_click="ignore",
                       file_name=f"glassbox-{room.kind}.npz", mime="application/octet-stream",
                       icon=":material/download:")
    st.file_uploader("Upload a model file to evaluate it or continue training it",
                     type=["npz"], key=f"{room.prefix}model_file")
    error = room_state(room).upload_error
    if error:
        st.error(error)
