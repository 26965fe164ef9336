"""Every "why" view, as pure functions over a model and digits: layer health and its diagnosis,
loss landscapes, the learning-rate finder, attribution, adversaries, feature visualisation,
the projector, one step phase by phase, the convolution's cells, teach-one-drawing, confidence."""
