"""The reloader, beside the server: the supervisor restarts a serving child process
when watch/ sees a change; protocol holds what the two say to each other."""
