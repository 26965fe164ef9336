"""✏️ Sketch lab (placeholder until its issue lands)."""

import streamlit as st

st.title("✏️ Sketch lab")
st.info("This room is being built.")
