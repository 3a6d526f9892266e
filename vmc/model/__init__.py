"""The model: the trial state's factors, their product, and the Hamiltonian."""
