"""Break-it lab: switch on a classic backprop bug and watch the twin-engine check catch it."""

import streamlit as st

from engine.playground import broken
from ui.state import ensure_router
from ui.views import breakit

ensure_router()

st.title(":material/bug_report: Break-it lab")
st.markdown(
    "Our autodiff engine, with one classic backprop bug switched on — in a copy of the "
    "backward pass that the rest of Glassbox never uses. A small network (784-32-32-10, ReLU, "
    f"cross-entropy plus a little weight decay) trains for {broken.STEPS} steps of plain SGD "
    "with the bug; then the **twin-engine check** compares our gradients with `jax.grad`'s at "
    "every weight, every bias and every signal between the layers. Where they part is where "
    "the bug lives.")

st.selectbox("Switch on", [broken.NO_BUG, *breakit.MYSTERY], key=breakit.BUG_KEY,
             format_func=breakit.bug_label,
             help="The bugs stay unnamed until you guess: read the charts, then pick a suspect.")
bug = st.session_state[breakit.BUG_KEY]

with st.spinner(f"Training {broken.STEPS} steps with {breakit.bug_label(bug).lower()}…"):
    result = breakit.lab_result(bug)

breakit.verdict(result)
check_column, loss_column = st.columns(2)
check_column.plotly_chart(breakit.check_figure(result.check), key="bk_check_chart",
                          width="stretch")
loss_column.plotly_chart(breakit.loss_figure(result.losses, result.healthy_losses),
                         key="bk_loss_chart", width="stretch")
st.caption(
    "Left: from the logits down, each place's largest difference between our gradient and "
    "jax.grad's, relative to jax.grad's largest (float32 rounding stays near 1e-7). "
    "\"before/after relu\": the gradient arriving at a layer's output before and after its "
    "ReLU. Right: the loss with the bug and with the real engine, same start, same batches.")

st.subheader("Your guess", anchor=False)
if bug == broken.NO_BUG:
    st.markdown("No bug is switched on: this is what healthy looks like.")
    breakit.explain(bug)
else:
    breakit.guess(bug)
