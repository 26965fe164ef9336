"""Glassbox entry point: routes to the rooms. Run with `streamlit run streamlit_app.py`."""

import streamlit as st

from engine.tuning import tune_server
from ui.rooms import adopt_ended_runs, keep_runs_alive
from ui.state import init_state

tune_server()  # GIL switch interval and malloc arenas, before any training thread or compile

st.set_page_config(page_title="Glassbox", page_icon="assets/favicon.png", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/sketch.py", title="Sketch lab", icon=":material/draw:"),
    st.Page("pages/autodiff.py", title="Autodiff playground", icon=":material/functions:"),
    st.Page("pages/feedforward.py", title="Feed-forward net", icon=":material/hub:"),
    st.Page("pages/cnn.py", title="CNN", icon=":material/grid_on:"),
]

init_state()
adopt_ended_runs()  # a run that ended reaches the sketch lab wherever the learner is
keep_runs_alive()  # the heartbeat of this session's training runs, on every page
st.navigation(PAGES).run()
