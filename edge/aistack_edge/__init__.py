"""The aistack edge: the public OpenAI-compatible contract, routing and the GPU slot."""

__version__ = "0.0.1"
