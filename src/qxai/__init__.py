"""qxai: explain what a trained neural network does with quantum and quantum-inspired methods.

The package follows the data flow: ``data`` -> ``models`` -> ``probe`` -> ``explain`` /
``analysis`` / ``anneal`` -> ``evaluate`` -> ``report`` -> ``cli``; ``pipeline`` strings the
stages together for the CLI and the demo.
"""

__version__ = "0.1.0"
