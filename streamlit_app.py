"""Glassbox entry point: routes to the rooms. Run with `streamlit run streamlit_app.py`."""

from pathlib import Path

import streamlit as st

from engine.app.tuning import tune_server
from ui.rooms.adoption import adopt_ended_runs, keep_runs_alive
from ui.rooms.links import keep_run_links_out_of_history
from ui.state import init_state

tune_server()  # GIL switch interval and malloc arenas, before any training thread or compile

FAVICON = Path(__file__).parent / "assets" / "favicon.png"  # shipped: no font CDN offline
st.set_page_config(page_title="Glassbox", page_icon=str(FAVICON), layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/lessons.py", title="Lessons", icon=":material/school:"),
    st.Page("pages/sketch.py", title="Sketch lab", icon=":material/draw:"),
    st.Page("pages/autodiff.py", title="Autodiff playground", icon=":material/functions:"),
    st.Page("pages/feedforward.py", title="Feed-forward net", icon=":material/hub:"),
    st.Page("pages/cnn.py", title="CNN", icon=":material/grid_on:"),
    st.Page("pages/breakit.py", title="Break-it lab", icon=":material/bug_report:"),
]

init_state()
adopt_ended_runs()  # a run that ended reaches the sketch lab wherever the learner is
with st.sidebar:  # below the navigation, where they move nothing on the pages
    keep_runs_alive()  # the heartbeat of this session's training runs, on every page
    keep_run_links_out_of_history()
st.navigation(PAGES).run()
