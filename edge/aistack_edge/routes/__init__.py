"""One module per public endpoint family."""
