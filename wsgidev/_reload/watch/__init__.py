"""What to watch (scope) and one module per way of watching: stat, watchfiles, watchdog."""
