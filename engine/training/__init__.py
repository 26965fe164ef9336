"""Training: the one loop every model trains with (`loop`: chunks of steps, progress events),
run statuses (`status`), the run service (`service`: threads, a queue, heartbeats) and saved
runs (`runs`)."""
