"""Real parts for aistack's tests: a Redis server, service processes, synthesized speech."""
