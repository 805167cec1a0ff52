"""The admin page at /admin: who may use it, the status it shows, its actions, its assets."""
