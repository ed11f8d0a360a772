"""Graph transforms, one module each: ``run(model) -> bool`` (True when the graph changed)."""
