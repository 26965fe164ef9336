"""A training room's session state: one frozen `RoomState` per room, replaced whole, never
patched; and what differs between the rooms, as a `Room`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import streamlit as st

from engine.models.family import Family
from engine.models.model import Model
from engine.training.service import Run


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
