"""Wire shapes shared by the aistack edge and its backends."""

__version__ = "0.0.1"
