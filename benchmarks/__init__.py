"""paretune's benchmarks; ``python -m benchmarks`` runs them all."""
