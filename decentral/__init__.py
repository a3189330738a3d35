"""decentral: a JAX simulator of Byzantine-robust decentralized learning."""

__version__ = "0.1.0"
