"""QUBO solvers (all dimod Samplers) and the physics of quantum annealing."""
