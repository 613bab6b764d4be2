"""Services: what commands do, wiring spec, graph, engine and store. No rendering, no argv parsing."""
