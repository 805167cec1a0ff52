"""One client per backend kind; nothing else in the edge talks to a backend."""
