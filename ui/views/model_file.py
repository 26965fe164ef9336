"""The rooms' "Model file" tab: download the room's model, upload one to evaluate or continue."""

from __future__ import annotations

import streamlit as st

from engine.models.files import model_file
from engine.models.model import Model
from ui.rooms.state import Room, room_state


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
