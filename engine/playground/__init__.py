"""The autodiff playground's exercises beyond one formula: the optimiser race, overfitting one
digit with our engine, and the break-it lab's planted backprop bugs."""
