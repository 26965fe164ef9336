"""🧱 CNN (placeholder until its issue lands)."""

import streamlit as st

st.title("🧱 CNN")
st.info("This room is being built.")
