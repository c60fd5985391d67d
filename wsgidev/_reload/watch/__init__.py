"""What the reloader watches (scope, paths) and one module per way of noticing a change:
stat (polling), watchfiles and watchdog (the operating system's events)."""
