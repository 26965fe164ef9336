"""Home: what Glassbox is, and a door to each room."""

import streamlit as st

from ui.state import ensure_router
from ui.views.lessons import lessons

ensure_router()

st.title("Glassbox", anchor=False)
st.markdown(
    "**See how deep learning works, from the inside.** Every gradient here is computed by code "
    "this project wrote (a home-made autodiff engine, and a convolution written by hand in JAX) "
    "and checked against an independent reference. Everything runs on real MNIST digits that "
    "ship with the app, so it works offline."
)

with st.container(border=True, key="home_start"):
    st.markdown(f"**New here? Start with the lessons**: {len(lessons())} short guided lessons, "
                f"from *{lessons()[0].title.lower()}* to *{lessons()[-1].title.lower()}*. Each "
                "step opens the room it is about, with the settings it needs.")
    st.page_link("pages/lessons.py", label="Start the first lesson", icon=":material/school:")

ROOMS = [
    ("pages/sketch.py", ":material/draw: Sketch lab",
     "Draw a digit and watch every model answer, and see exactly what each model sees."),
    ("pages/autodiff.py", ":material/functions: Autodiff playground",
     "Type a formula, see its computation graph, step through backpropagation, and check "
     "the gradients against JAX and finite differences."),
    ("pages/feedforward.py", ":material/hub: Feed-forward net",
     "Train a network on MNIST live, with our autodiff engine or with jax.grad, and see "
     "both engines agree."),
    ("pages/cnn.py", ":material/grid_on: CNN",
     "A convolution written by hand, trained in seconds: watch its filters and feature maps "
     "form."),
]

# One row of cards, each stretched to the row's height so the doors line up (issue 18).
with st.container(horizontal=True, key="home_rooms"):
    for path, title, blurb in ROOMS:
        with st.container(border=True, height="stretch", vertical_alignment="distribute"):
            with st.container():  # title and blurb at the top, the door at the bottom
                st.subheader(title, anchor=False)
                st.write(blurb)
            st.page_link(path, label=f"Open {title.split(' ', 1)[1]}",
                         icon=":material/arrow_forward:")
