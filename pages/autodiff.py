"""🧮 Autodiff playground (placeholder until its issue lands)."""

import streamlit as st

st.title("🧮 Autodiff playground")
st.info("This room is being built.")
