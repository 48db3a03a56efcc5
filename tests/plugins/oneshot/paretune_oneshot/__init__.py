"""One-shot global magnitude pruning for paretune, registered through entry points."""
