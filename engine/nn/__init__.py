"""Neural-network pieces written once for both backends: layers against an `Ops` namespace,
losses, optimizers as pure `(init, update)` pairs, and flat parameter vectors (`params`)."""
