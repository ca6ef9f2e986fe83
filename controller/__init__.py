"""Runtime layer: settings, store, the reconcile pass, CLI."""
