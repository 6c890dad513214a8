"""What the main screen does beyond the queue and the thread, one feature a module: each flow
gets the screen, runs its I/O in the screen's workers, and talks to the agent with dialogs."""
