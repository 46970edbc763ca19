"""PilotNet: the network, its weights files, training and offline evaluation (needs torch)."""
