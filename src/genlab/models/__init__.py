"""Training logic (`LightningModule`s); each wraps a network from `genlab.nn`."""
