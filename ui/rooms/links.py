"""Run links: a run's id in the page's URL (?run=...), and the run it names brought back after
a reload or from a bookmark."""

from __future__ import annotations

import streamlit as st

from engine.models.checkpoint import CheckpointError
from engine.training import runs
from engine.training.service import Run
from ui.rooms.adoption import adopt_ended_run
from ui.rooms.state import Room, RoomState, room_state, update_room
from ui.training import run_service

RUN_PARAM = "run"  # the URL's query parameter holding the page's run id


RUN_IDS_SEEN = "run_ids_seen"  # session state: run ids this session has shown or tried


LINK_NOTE = ", brought back by its link"  # added to the label of a restored run's model


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
